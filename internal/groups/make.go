package groups

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
)

// MakeDieEnv, set to the path of a file in lkc's environment (the CLI's
// or the daemon's), makes lkc SIGKILL its own process right after it
// made a group's cgroup and before it wrote the limits, if it can remove
// that file: the crash the integration tests of the make record need,
// once.
const MakeDieEnv = "LKC_TEST_GROUP_MAKE_DIE"

// makeRecordName is the record of a group's cgroup being made, in the
// groups' directory: written before the first mkdir, removed once the
// limits are written. A cgroup made by an lkc (or a daemon worker) killed
// before its limits would otherwise stay without them for good: the next
// Ensure finds every directory there and makes nothing. Whoever takes the
// groups' lock next writes the recorded group's limits (finishMake).
const makeRecordName = ".make.json"

// makeRecord is what finishing a killed make needs.
type makeRecord struct {
	Group string `json:"group"`
}

// makeCgroup makes g's cgroup with create (every hierarchy, or those
// missing) and writes g's limits to m, under the make record.
func (s *Store) makeCgroup(g *Group, m cgroups.Manager, create func() error) error {
	path := filepath.Join(s.Dir, makeRecordName)
	data, err := json.Marshal(makeRecord{Group: g.Name})
	if err == nil {
		err = os.WriteFile(path+".tmp", data, 0o600)
	}
	if err == nil {
		err = os.Rename(path+".tmp", path)
	}
	if err != nil {
		os.Remove(path + ".tmp")
		return fmt.Errorf("group %s: recording the make: %w", g.Name, err)
	}
	defer os.Remove(path)
	if err := create(); err != nil {
		return fmt.Errorf("group %s: %w", g.Name, err)
	}
	if die := os.Getenv(MakeDieEnv); die != "" && os.Remove(die) == nil {
		unix.Kill(os.Getpid(), unix.SIGKILL)
	}
	if err := cgroups.SetOrdered(m, &g.Resources); err != nil {
		return fmt.Errorf("group %s: %w", g.Name, err)
	}
	return nil
}

// finishMake writes the limits of the group whose make a killed lkc left
// half done (its record), with the groups' lock held, making what is
// still missing of its cgroup. Best effort, as finishMove: the record
// goes either way (a group deleted since has nothing to finish).
func (s *Store) finishMake() {
	path := filepath.Join(s.Dir, makeRecordName)
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	rec := &makeRecord{}
	if json.Unmarshal(data, rec) == nil && CheckName(rec.Group) == nil {
		if g, err := s.Get(rec.Group); err == nil {
			if made, err := s.Ensure(g); err == nil && !made {
				s.Apply(g)
			}
		} else if !errors.Is(err, ErrNotExist) {
			return // unreadable now: the next lock tries again
		}
	}
	os.Remove(path)
}
