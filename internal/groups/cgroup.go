package groups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/config"
)

// Manager is the cgroup of group name (which need not exist yet).
func (s *Store) Manager(name string) (cgroups.Manager, error) {
	m, err := cgroups.New(s.Host, filepath.Join(s.Parent, name))
	if err != nil {
		return nil, fmt.Errorf("group %s: %w", name, err)
	}
	return m, nil
}

// Create defines group g and makes its cgroup with its limits. The
// definition is written first, so a crash leaves a group the daemon (or
// the next exec, move or update) completes, never a cgroup nobody knows;
// on an error both are undone.
func (s *Store) Create(g *Group) error {
	if err := CheckName(g.Name); err != nil {
		return err
	}
	if err := checkResources(&g.Resources); err != nil {
		return fmt.Errorf("group %s: %w", g.Name, err)
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(s.defPath(g.Name)); err == nil {
		return fmt.Errorf("group %s: %w", g.Name, ErrExist)
	}
	if p := parentName(g.Name); p != "" {
		if _, err := s.Get(p); err != nil {
			return fmt.Errorf("group %s: parent group %s does not exist (create it first)", g.Name, p)
		}
	}
	m, err := s.Manager(g.Name)
	if err != nil {
		return err
	}
	if err := cgroups.CheckValues(m, &g.Resources); err != nil {
		return fmt.Errorf("group %s: %w", g.Name, err)
	}
	if err := s.save(g); err != nil {
		return err
	}
	if err := s.makeCgroup(g, m, m.Create); err != nil {
		m.Destroy()
		s.remove(g.Name)
		return err
	}
	return nil
}

// checkResources refuses limits no kernel takes before anything is made.
func checkResources(r *config.Resources) error {
	if r.SwapBelowMemory() {
		return fmt.Errorf("memory+swap limit %d is below the memory limit %d", *r.MemorySwap, *r.MemoryLimit)
	}
	if r.MemorySwap != nil && *r.MemorySwap > 0 && r.MemoryLimit == nil {
		return errors.New("a memory+swap limit needs a memory limit too")
	}
	return nil
}

// Ensure makes the cgroup of g where it is missing (after a reboot, or a
// hierarchy's directory removed by hand) and applies g's limits there. It
// reports whether it made anything. Preconditions: the groups' lock is
// held (the limits record is one for the store).
func (s *Store) Ensure(g *Group) (bool, error) {
	m, err := s.Manager(g.Name)
	if err != nil {
		return false, err
	}
	missing := map[string]string{}
	for hier, dir := range m.Paths() {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			missing[hier] = dir
		}
	}
	if len(missing) == 0 {
		return false, nil
	}
	if err := s.makeCgroup(g, m, cgroups.FromPaths(missing, nil).Create); err != nil {
		return true, err
	}
	return true, nil
}

// Apply writes the limits g's definition sets to its cgroup (a reload
// after the definition was edited by hand); a limit the definition no
// longer sets is left as it is.
func (s *Store) Apply(g *Group) error {
	m, err := s.Manager(g.Name)
	if err != nil {
		return err
	}
	if err := cgroups.SetOrdered(m, &g.Resources); err != nil {
		return fmt.Errorf("group %s: %w", g.Name, err)
	}
	return nil
}

// Update changes a group's limits live (the fields r sets) and records
// them, through the same code as `lkc update` of a container.
func (s *Store) Update(name string, r *config.Resources) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	g, m, err := s.ready(name)
	if err != nil {
		return err
	}
	return s.update(g, m, r)
}

// SetOOM records a group's OOM policy ("" or kernel: the kernel's own),
// fallback and deadline ("": the host defaults); a nil one is left as it
// is. The daemon's oom service reads them from the definition and arms the
// group's memory cgroup; this package checks no policy syntax.
func (s *Store) SetOOM(name string, policy, fallback, deadline *string) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	g, err := s.Get(name)
	if err != nil {
		return err
	}
	for _, f := range []struct{ to, from *string }{{&g.OOMPolicy, policy}, {&g.OOMFallback, fallback}, {&g.OOMDeadline, deadline}} {
		if f.from != nil {
			*f.to = *f.from
		}
	}
	return s.save(g)
}

// Ready is group name's cgroup, made where it is missing, for the rules
// engine. It holds the groups' lock, as Move does: a delete under way
// removes the cgroup before the definition, and a cgroup made again in
// between would outlive its group.
func (s *Store) Ready(name string) (cgroups.Manager, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	_, m, err := s.ready(name)
	return m, err
}

// ready reads a group and makes sure its cgroup exists.
func (s *Store) ready(name string) (*Group, cgroups.Manager, error) {
	g, err := s.Get(name)
	if err != nil {
		return nil, nil, err
	}
	if _, err := s.Ensure(g); err != nil {
		return nil, nil, err
	}
	m, err := s.Manager(name)
	return g, m, err
}

// Delete removes a group's cgroup and definition. A group with child
// groups is refused; so is one holding processes, unless force, which
// moves them to the group's parent cgroup first.
func (s *Store) Delete(name string, force bool) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return s.delete(name, force)
}

// delete is Delete with the groups' lock held, under the limits record
// (written once the group is known deletable, before the first process
// is moved out or the first directory removed): an lkc killed before the
// definition is gone leaves the delete to whoever takes the lock next
// (finishLimits), so the next daemon start does not make the cgroup of a
// group being deleted again.
func (s *Store) delete(name string, force bool) error {
	if _, err := s.Get(name); err != nil {
		return err
	}
	if kids, err := s.children(name); err != nil || len(kids) > 0 {
		return fmt.Errorf("group %s has child groups %v: %w (delete them first)", name, kids, ErrBusy)
	}
	m, err := s.Manager(name)
	if err != nil {
		return err
	}
	pids := Procs(m)
	if len(pids) > 0 && !force {
		return fmt.Errorf("group %s holds processes %v: %w (--force moves them to its parent)", name, pids, ErrBusy)
	}
	if err := s.writeLimitsRecord(limitsRecord{Group: name, Delete: true, Force: force}); err != nil {
		return err
	}
	defer s.removeLimitsRecord()
	if len(pids) > 0 {
		if err := s.evacuate(m); err != nil {
			return fmt.Errorf("group %s: %w", name, err)
		}
	}
	if err := m.Destroy(); err != nil {
		return fmt.Errorf("group %s: %w", name, err)
	}
	dieForTest(DeleteDieEnv)
	return s.remove(name)
}

// Procs lists the processes in a group's cgroup and below it, in any
// hierarchy (another tool may have moved one in a single hierarchy).
func Procs(m cgroups.Manager) []int {
	seen := map[int]bool{}
	for _, dir := range m.Paths() {
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				for _, pid := range readProcs(p) {
					seen[pid] = true
				}
			}
			return nil
		})
	}
	out := make([]int, 0, len(seen))
	for pid := range seen {
		out = append(out, pid)
	}
	sort.Ints(out)
	return out
}

func readProcs(dir string) []int {
	data, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// evacuate moves every process of the group's cgroups (and sub-cgroups)
// to the cgroup above the group's, in each hierarchy, until none is left
// (a process may fork meanwhile). On v2 a cgroup that enables
// controllers for its children holds no processes (the kernel answers
// EBUSY), so a process goes to the nearest ancestor that takes it, the
// root cgroup at worst.
func (s *Store) evacuate(m cgroups.Manager) error {
	for round := 0; round < 100; round++ {
		moved := false
		for _, dir := range m.Paths() {
			err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err != nil || !d.IsDir() {
					return nil
				}
				for _, pid := range readProcs(p) {
					moved = true
					if err := s.moveUp(filepath.Dir(dir), pid); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("moving processes out: %w", err)
			}
		}
		if !moved {
			return nil
		}
	}
	return errors.New("moving processes out: they keep coming (a fork storm?)")
}

// moveUp writes pid into up, or the nearest ancestor of up that takes
// it, within the cgroup filesystem.
func (s *Store) moveUp(up string, pid int) error {
	for {
		err := writeProcs(up, pid)
		if err == nil || errors.Is(err, unix.ESRCH) {
			return nil
		}
		next := filepath.Dir(up)
		if !errors.Is(err, unix.EBUSY) || !strings.HasPrefix(next, s.Host.Root) || next == up {
			return err
		}
		up = next
	}
}

// Stats are a group's counters and its processes.
type Stats struct {
	Name   string           `json:"name"`
	Pids   []int            `json:"pids"`
	Limits config.Resources `json:"limits"`
	Usage  *cgroups.Stats   `json:"usage"`
}

// Stats reads a group's usage, once a Move a killed lkc left half done
// is finished.
func (s *Store) Stats(name string) (*Stats, error) {
	s.settleMove()
	g, err := s.Get(name)
	if err != nil {
		return nil, err
	}
	m, err := s.Manager(name)
	if err != nil {
		return nil, err
	}
	u, err := m.Stats()
	if err != nil {
		return nil, fmt.Errorf("group %s: %w", name, err)
	}
	return &Stats{Name: name, Pids: Procs(m), Limits: g.Resources, Usage: u}, nil
}

// Idle reports whether g is a group the rules engine made from a template
// and may remove: no process in its cgroups and no child group.
func (s *Store) Idle(g *Group) bool {
	if g.Template == "" {
		return false
	}
	if kids, err := s.children(g.Name); err != nil || len(kids) > 0 {
		return false
	}
	m, err := s.Manager(g.Name)
	return err == nil && len(Procs(m)) == 0
}

// RemoveIdle removes group name, cgroup and definition, if it is still
// idle (Idle), under the groups' lock; it reports whether it did. A
// process moved in meanwhile (lkc group move) keeps it, and so does one
// that a rule moves in while the cgroup goes: the removal fails, busy.
func (s *Store) RemoveIdle(name string) (bool, error) {
	unlock, err := s.lock()
	if err != nil {
		return false, err
	}
	defer unlock()
	g, err := s.Get(name)
	if errors.Is(err, ErrNotExist) {
		return false, nil
	}
	if err != nil || !s.Idle(g) {
		return false, err
	}
	m, err := s.Manager(name)
	if err != nil {
		return false, err
	}
	if err := m.Destroy(); err != nil {
		return false, fmt.Errorf("group %s: %w", name, err)
	}
	return true, s.remove(name)
}
