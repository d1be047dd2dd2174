// Package groups keeps resource groups: named cgroups for arbitrary host
// processes (not containers), with the same limits as a container
// (config.Resources, applied by internal/cgroups). A group's definition
// lives on disk (one JSON file per group beneath groups.dir) so the daemon
// can make its cgroup again after a reboot; its cgroup lives at
// groups.parent/<name> in every hierarchy. Its one reason to change is how
// groups are defined, stored and mapped onto cgroups; the CLI and the
// daemon's groups service both use it.
package groups

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/eventlog"
	"github.com/lkc-containers/lkc/internal/hostconf"
)

// Sentinel errors, checked with errors.Is by the CLI.
var (
	ErrNotExist = errors.New("no such group")
	ErrExist    = errors.New("group exists")
	ErrBusy     = errors.New("group is not empty")
)

// Group is one group's definition, as stored.
type Group struct {
	Name      string           `json:"name"`
	Resources config.Resources `json:"resources"`
	// OOMPolicy is the group's OOM policy (docs/daemon.md), empty for the
	// kernel's own.
	OOMPolicy string `json:"oomPolicy,omitempty"`
	// OOMFallback and OOMDeadline are the group's own fallback and
	// deadline (docs/oom.md), empty for the host defaults (oom.fallback,
	// oom.deadline): a group of batch jobs may want kill-newest after 30s
	// where the host's containers get kill-largest after 5s.
	OOMFallback string `json:"oomFallback,omitempty"`
	OOMDeadline string `json:"oomDeadline,omitempty"`
	// Template is the rule's target the rules engine made the group from
	// (java/%u), empty for a group made with `lkc group create`: only a
	// group made from a template is removed once it stays empty
	// (RemoveIdle), as systemd removes a user's slice.
	Template string `json:"template,omitempty"`
}

// Store is the groups of one host: where their definitions are and where
// their cgroups go.
type Store struct {
	Dir    string       // definitions: <Dir>/<name>.json
	Parent string       // absolute cgroup path the groups' cgroups are beneath
	Host   cgroups.Host // the cgroup filesystems
}

// FromConf is the store lkc.conf describes (groups.dir, groups.parent).
func FromConf(c *hostconf.Conf) *Store {
	return &Store{Dir: c.GroupsDir, Parent: c.GroupsParent, Host: cgroups.DefaultHost}
}

// maxDepth bounds nesting: deeper names are surely mistakes.
const maxDepth = 8

// reserved are names a v1 cgroup directory already holds as files.
var reserved = map[string]bool{"tasks": true, "notify_on_release": true, "release_agent": true}

// CheckName checks a group name: components of letters, digits, '_' and
// '-' (not first), joined by '/'. No dots, so no component can be "..",
// hide as a dotfile, or collide with a controller's files ("memory.max").
func CheckName(name string) error {
	parts := strings.Split(name, "/")
	if name == "" || len(parts) > maxDepth {
		return fmt.Errorf("group name %q: use 1 to %d components joined by /", name, maxDepth)
	}
	for _, p := range parts {
		if !validComponent(p) || reserved[p] {
			return fmt.Errorf("group name %q: component %q must be 1-64 letters, digits, _ or - (not first), and not a cgroup file name", name, p)
		}
	}
	return nil
}

func validComponent(p string) bool {
	if p == "" || len(p) > 64 || p[0] == '-' {
		return false
	}
	for _, c := range p {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// parentName is the enclosing group of a nested name ("" at the top).
func parentName(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return ""
}

func (s *Store) defPath(name string) string { return filepath.Join(s.Dir, name+".json") }

// EventsPath is the group's OOM policy event log (internal/eventlog),
// beside its definition: the daemon's oom service appends to it and `lkc
// group events` reads it; deleting the group deletes it.
func (s *Store) EventsPath(name string) string {
	return filepath.Join(s.Dir, name+".events.jsonl")
}

// Get reads a group's definition.
func (s *Store) Get(name string) (*Group, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(s.defPath(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("group %s: %w", name, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("reading group %s: %w", name, err)
	}
	g := &Group{}
	if err := json.Unmarshal(data, g); err != nil {
		return nil, fmt.Errorf("group %s: definition %s: %w", name, s.defPath(name), err)
	}
	if g.Name != name {
		return nil, fmt.Errorf("group %s: definition %s names %q", name, s.defPath(name), g.Name)
	}
	return g, nil
}

// save writes a definition atomically (temp file, fsync, rename).
func (s *Store) save(g *Group) error {
	p := s.defPath(g.Name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("saving group %s: %w", g.Name, err)
	}
	data, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return fmt.Errorf("saving group %s: %w", g.Name, err)
	}
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		_, err = f.Write(append(data, '\n'))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving group %s: %w", g.Name, err)
	}
	return nil
}

// remove deletes a definition, the directory of its children once it is
// empty, and its parent's children directory once that is: save made it
// for the definition, and a create refused by the kernel (or the last
// child's delete) must leave nothing of it.
func (s *Store) remove(name string) error {
	if err := os.Remove(s.defPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing group %s: %w", name, err)
	}
	os.Remove(s.EventsPath(name))
	os.Remove(eventlog.Rotated(s.EventsPath(name)))
	os.Remove(filepath.Join(s.Dir, name)) // the children's directory, if empty
	if p := parentName(name); p != "" {
		os.Remove(filepath.Join(s.Dir, p)) // the siblings', if empty
	}
	return nil
}

// List returns every group, parents before their children (finishing
// first a Move a killed lkc left half done). A definition
// that cannot be read (a file broken by hand) is told to warn and left
// out: one bad group must not take the others' list, their cgroups'
// making after a reboot or their OOM policies with it.
func (s *Store) List(warn func(error)) ([]*Group, error) {
	s.settleMove()
	var names []string
	err := filepath.WalkDir(s.Dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && p == s.Dir {
				return filepath.SkipDir
			}
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".json") {
			return nil
		}
		rel, _ := filepath.Rel(s.Dir, strings.TrimSuffix(p, ".json"))
		if CheckName(rel) == nil {
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing groups in %s: %w", s.Dir, err)
	}
	sort.Strings(names)
	out := make([]*Group, 0, len(names))
	for _, n := range names {
		g, err := s.Get(n)
		if err != nil {
			warn(err)
			continue
		}
		out = append(out, g)
	}
	return out, nil
}

// children lists the groups directly inside name.
func (s *Store) children(name string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.Dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var out []string
	for _, e := range ents {
		if n := strings.TrimSuffix(e.Name(), ".json"); !e.IsDir() && n != e.Name() && validComponent(n) {
			out = append(out, name+"/"+n)
		}
	}
	return out, err
}

// lock serializes the commands that change groups (flock on <Dir>/.lock),
// and first finishes a Move, or a make or update of a group's limits, a
// killed lkc left half done.
func (s *Store) lock() (func(), error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("groups directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.Dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking groups: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking groups: %w", err)
	}
	s.finishMove()
	s.finishLimits()
	return func() { f.Close() }, nil
}
