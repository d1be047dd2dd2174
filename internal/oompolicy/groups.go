package oompolicy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lkc-containers/lkc/internal/effective"
	"github.com/lkc-containers/lkc/internal/groups"
	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/registry"
)

// Resource groups (internal/groups) get the same policies as containers.
// The groups service and the CLI own a group's cgroup and its limits; this
// service owns what it arms a container with (v1 oom_control, v2
// memory.high) in the group's memory cgroup, from the `oomPolicy` of the
// group's definition, which it reads again every groupsEvery: a group
// created or changed by `lkc group` is armed within that, one deleted is
// forgotten. A group is keyed with an empty root, which no container has.

// groupsEvery is how often the service reads the groups' definitions.
const groupsEvery = time.Second

// ErrCheckpointGroup refuses the checkpoint policy for a group: CRIU dumps
// process trees with their namespaces and mounts (a container), not a set
// of host processes.
var ErrCheckpointGroup = errors.New("the checkpoint policy is for containers; a group takes kernel, kill-largest, kill-newest, grow:<ceiling> or notify:<command>")

// CheckGroupPolicy checks a group's policy as `lkc group create/update
// --oom-policy` takes it.
func CheckGroupPolicy(v string) error {
	p, err := Parse(v)
	if err == nil && p.Kind == Checkpoint {
		err = ErrCheckpointGroup
	}
	return err
}

// groupSettings are group g's settings: its definition's policy, and its
// fallback and deadline where it has them, else the host defaults.
func groupSettings(c *hostconf.Conf, g *groups.Group) (Settings, error) {
	if err := CheckGroupPolicy(g.OOMPolicy); err != nil {
		return Settings{}, fmt.Errorf("definition's oomPolicy: %w", err)
	}
	s, err := Resolve(c, map[string]string{hostconf.AnnotationOOMPolicy: g.OOMPolicy})
	if err != nil {
		return s, err
	}
	if g.OOMFallback != "" {
		if s.Fallback, err = parseFallback(g.OOMFallback); err != nil {
			return s, fmt.Errorf("definition's oomFallback: %w", err)
		}
	}
	if g.OOMDeadline != "" {
		if s.Deadline, err = ParseDeadline(g.OOMDeadline); err != nil {
			return s, fmt.Errorf("definition's oomDeadline: %w", err)
		}
	}
	return s, nil
}

// groupKey is what a group is armed with: a change to any part re-arms it.
func groupKey(g *groups.Group) string {
	return g.OOMPolicy + "\n" + g.OOMFallback + "\n" + g.OOMDeadline
}

// groupEntry is the registry entry a group is armed under.
func groupEntry(name string) *registry.Entry { return &registry.Entry{ID: name} }

// name names what is armed in the daemon's log: "container ID" or
// "group NAME".
func (a *armed) name() string {
	if a.group != "" {
		return "group " + a.e.ID
	}
	return "container " + a.e.ID
}

// reconcileGroups arms every group with a policy that is not armed yet,
// or armed with another policy (disarmed first), and marks them served.
func (s *Service) reconcileGroups(served map[string]bool) {
	store := groups.FromConf(s.deps.Conf)
	all, err := store.List(func(err error) {
		// Logged once, as a failed arming is: the service reads the
		// definitions every second.
		if k := "groups " + err.Error(); !s.failed[k] {
			s.failed[k] = true
			s.deps.Logf("oom: %v", err)
		}
	})
	if err != nil {
		if !s.failed["groups"] {
			s.deps.Logf("oom: %v", err)
		}
		s.failed["groups"] = true
		return
	}
	delete(s.failed, "groups")
	defined := map[string]bool{}
	for _, g := range all {
		defined[groupLogged+g.Name] = true
		if g.OOMPolicy == "" || g.OOMPolicy == string(Kernel) {
			continue
		}
		e := groupEntry(g.Name)
		k := keyOf(e)
		served[k] = true
		if a := s.byKey[k]; a != nil && a.group != groupKey(g) {
			s.disarm(a, true)
			delete(s.failed, k)
		}
		if a := s.byKey[k]; (a != nil && a.efd >= 0) || s.failed[k] {
			continue
		}
		a, err := s.armGroup(store, g)
		if err != nil {
			s.failed[k] = true
			if !s.failed[groupLogged+g.Name] {
				s.failed[groupLogged+g.Name] = true
				s.deps.Logf("oom: group %s: %v", g.Name, err)
			}
		}
		if a != nil {
			delete(s.failed, groupLogged+g.Name)
			a.by = "start"
			s.check(a, true)
		}
	}
	for k := range s.failed {
		if strings.HasPrefix(k, groupLogged) && !defined[k] {
			delete(s.failed, k)
		}
	}
}

// groupLogged prefixes, in Service.failed, a group whose arming failure
// was logged. The arming is tried again at each reading of the
// definitions (its cgroup may come: `lkc group create` writes the
// definition first), but logged only once, not every second.
const groupLogged = "groups: logged "

// armGroup arms group g: its events go to the group's log (EventsPath).
func (s *Service) armGroup(store *groups.Store, g *groups.Group) (*armed, error) {
	set, err := groupSettings(s.deps.Conf, g)
	if err != nil {
		return nil, err
	}
	m, err := store.Manager(g.Name)
	if err != nil {
		return nil, err
	}
	dir, v2, ok, err := effective.Cgroups(m.Paths()).Dir("memory")
	if err != nil || !ok {
		return nil, err
	}
	a := &armed{e: groupEntry(g.Name), set: set, dir: dir, efd: -1, psi: -1, group: groupKey(g), v2: v2,
		events: store.EventsPath(g.Name)}
	if v2 {
		return s.register(a, armV2)
	}
	return s.register(a, armV1)
}
