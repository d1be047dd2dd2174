package groups

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/config"
)

// LimitsDieEnv, set to the path of a file in lkc's environment (the
// CLI's or the daemon's), makes lkc SIGKILL its own process, if it can
// remove that file, right after it made a group's cgroup (before the
// limits are written) or wrote an update's limits (before the definition
// records them): the crashes the integration tests of the limits record
// need, once.
const LimitsDieEnv = "LKC_TEST_GROUP_LIMITS_DIE"

// DeleteDieEnv is LimitsDieEnv's twin for `lkc group delete`: lkc
// SIGKILLs itself after it removed the group's cgroup, before the
// definition goes.
const DeleteDieEnv = "LKC_TEST_GROUP_DELETE_DIE"

// limitsRecordName is the record of a group's limits being written (or
// of the group being deleted), in the groups' directory: written before
// the first mkdir of a make, the first write of an update or the first
// change of a delete, removed once the limits are in the cgroup and the
// definition (once the definition is gone). An lkc (or daemon worker) killed in between would
// otherwise leave a cgroup without its limits for good (the next Ensure
// finds every directory there and makes nothing), or an update's limits
// in the cgroup that the definition does not know (a reboot or a reload
// would silently go back), or a deleted group's definition without its
// cgroup (the next daemon start would make it again, empty). Whoever takes the groups' lock next finishes
// it (finishLimits).
const limitsRecordName = ".limits.json"

// limitsRecord is what finishing a killed make, update or delete needs.
type limitsRecord struct {
	Group string `json:"group"`
	// Update is an update's change (nil for a make): finishing writes
	// it again and records it.
	Update *config.Resources `json:"update,omitempty"`
	// Delete is a delete (Force: with --force): finishing deletes the
	// group again, as the same command would now.
	Delete bool `json:"delete,omitempty"`
	Force  bool `json:"force,omitempty"`
}

func (s *Store) writeLimitsRecord(rec limitsRecord) error {
	path := filepath.Join(s.Dir, limitsRecordName)
	data, err := json.Marshal(rec)
	if err == nil {
		err = os.WriteFile(path+".tmp", data, 0o600)
	}
	if err == nil {
		err = os.Rename(path+".tmp", path)
	}
	if err != nil {
		os.Remove(path + ".tmp")
		return fmt.Errorf("group %s: recording its limits: %w", rec.Group, err)
	}
	return nil
}

func (s *Store) removeLimitsRecord() { os.Remove(filepath.Join(s.Dir, limitsRecordName)) }

// dieForTest is the crash of hook env (LimitsDieEnv, DeleteDieEnv).
func dieForTest(env string) {
	if die := os.Getenv(env); die != "" && os.Remove(die) == nil {
		unix.Kill(os.Getpid(), unix.SIGKILL)
	}
}

// makeCgroup makes g's cgroup with create (every hierarchy, or those
// missing) and writes g's limits to m, under the limits record.
func (s *Store) makeCgroup(g *Group, m cgroups.Manager, create func() error) error {
	if err := s.writeLimitsRecord(limitsRecord{Group: g.Name}); err != nil {
		return err
	}
	defer s.removeLimitsRecord()
	if err := create(); err != nil {
		return fmt.Errorf("group %s: %w", g.Name, err)
	}
	dieForTest(LimitsDieEnv)
	if err := cgroups.SetOrdered(m, &g.Resources); err != nil {
		return fmt.Errorf("group %s: %w", g.Name, err)
	}
	return nil
}

// update writes change r to g's cgroup m (cgroups.Update, the code of
// `lkc update`) and records the merged limits in g's definition, under
// the limits record.
func (s *Store) update(g *Group, m cgroups.Manager, r *config.Resources) error {
	if err := s.writeLimitsRecord(limitsRecord{Group: g.Name, Update: r}); err != nil {
		return err
	}
	defer s.removeLimitsRecord()
	merged, err := cgroups.Update(m, &g.Resources, r)
	if err != nil {
		return fmt.Errorf("group %s: %w", g.Name, err)
	}
	dieForTest(LimitsDieEnv)
	g.Resources = *merged
	return s.save(g)
}

// finishLimits finishes the make, update or delete a killed lkc left
// half done (its record), with the groups' lock held: a make's group gets
// what is still missing of its cgroup and its limits; an update is
// written again and recorded, or, when the cgroup now refuses it, the
// definition's limits are written back, as a refused update leaves them;
// a delete is done again (refused, the group stays, as the command would
// leave it now: a process that joined since and no --force). Best effort,
// as finishMove: the record goes either way (a group deleted since has
// nothing to finish).
func (s *Store) finishLimits() {
	path := filepath.Join(s.Dir, limitsRecordName)
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	rec := &limitsRecord{}
	if json.Unmarshal(data, rec) == nil && CheckName(rec.Group) == nil {
		g, err := s.Get(rec.Group)
		switch {
		case err == nil && rec.Delete:
			s.delete(rec.Group, rec.Force)
		case err == nil && rec.Update != nil:
			if _, m, err := s.ready(rec.Group); err == nil && s.update(g, m, rec.Update) != nil {
				s.Apply(g)
			}
		case err == nil:
			if made, err := s.Ensure(g); err == nil && !made {
				s.Apply(g)
			}
		case !errors.Is(err, ErrNotExist):
			return // unreadable now: the next lock tries again
		}
	}
	os.Remove(path)
}
