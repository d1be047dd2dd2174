// Package effective answers "what may this use?" for a cgroup or a
// process: the tightest of each limit over a cgroup and all its ancestors
// (a Kubernetes pod's limit sits on the parent of its containers), on
// cgroup v1 and v2, a process's rlimits and allowed CPUs, and the room it
// has to write into a directory (on a tmpfs, whose files are memory, its
// memory room: the host's and its cgroups'). It only
// reads, so the /proc renderers and `lkc limits` share one answer and
// agree by construction. Kernel paths come from a root directory so tests
// run on fake trees.
package effective

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
)

// Cgroups maps a controller hierarchy to a cgroup directory, as
// state.State.CgroupPaths records them: v1 keys name the hierarchy's
// controllers ("memory", "cpu,cpuacct"); the key "" is a v2 directory,
// which serves every controller no v1 key names (pure v2, or the unified
// half of a hybrid host).
type Cgroups map[string]string

// Dir returns the directory serving controller ctrl, and whether it is a
// v2 one (by cgroupfs.IsV2, the one test lkc uses). ok is false when no
// hierarchy has the controller; err says the directory is gone.
func (c Cgroups) Dir(ctrl string) (dir string, v2 bool, ok bool, err error) {
	for key, d := range c {
		for _, name := range strings.Split(key, ",") {
			if name == ctrl {
				dir, ok = d, true
			}
		}
	}
	if !ok {
		dir, ok = c[""]
	}
	if !ok {
		return "", false, false, nil
	}
	v2, err = cgroupfs.IsV2(dir)
	if err != nil {
		return "", false, false, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	if v2 && !hasController(dir, ctrl) {
		return "", false, false, nil
	}
	return dir, v2, true, nil
}

// hasController says whether a v2 cgroup has ctrl: the root lists every
// controller in cgroup.controllers; below it, what the parent enabled.
func hasController(dir, ctrl string) bool {
	data, err := cgroupfs.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	return err == nil && strings.Contains(" "+strings.TrimSpace(string(data))+" ", " "+ctrl+" ")
}

// Level is one cgroup's own setting of a limit; Set is false where it does
// not limit ("max", -1, the v1 "unlimited" number).
type Level[T uint64 | float64] struct {
	Cgroup string `json:"cgroup"`
	Value  T      `json:"value"`
	Set    bool   `json:"set"`
}

// Limit is the effective value of one limit: the tightest Level, found at
// At. Set is false when no level limits it (Value is then 0, as it is for
// a limit set to 0: read Set first). Levels run from the cgroup up to its
// hierarchy's root.
type Limit[T uint64 | float64] struct {
	Value  T          `json:"value"`
	Set    bool       `json:"set"`
	At     string     `json:"at,omitempty"`
	Levels []Level[T] `json:"levels"`
}

// errNoFile marks a level that does not have the limit's file (the root
// of a v2 hierarchy, a controller not enabled there).
var errNoFile = errors.New("no such limit file")

// walk collects one limit from dir up to its hierarchy's root. read
// returns errNoFile for a level without the file; when dir itself has
// none, the controller is missing there and walk returns nil, unless dir
// is the root, which has no limit files: no limit.
func walk[T uint64 | float64](dir string, read func(dir string) (T, bool, error)) (*Limit[T], error) {
	l := &Limit[T]{Levels: []Level[T]{}} // [] in JSON, not null, when no level has the file
	for d := dir; ; d = filepath.Dir(d) {
		v, set, err := read(d)
		switch {
		case errors.Is(err, errNoFile):
			if d == dir && isCgroup(filepath.Dir(d)) {
				return nil, nil
			}
		case err != nil:
			return nil, err
		default:
			l.Levels = append(l.Levels, Level[T]{Cgroup: d, Value: v, Set: set})
			if set && (!l.Set || v < l.Value) {
				l.Value, l.Set, l.At = v, true, d
			}
		}
		if !isCgroup(filepath.Dir(d)) || filepath.Dir(d) == d {
			return l, nil
		}
	}
}

// isCgroup says whether dir is a cgroup, of either version: every cgroup
// has cgroup.procs, and the directories above a hierarchy's root (or above
// the root a cgroup namespace shows) do not.
func isCgroup(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "cgroup.procs"))
	return err == nil
}

// readValue reads a one-line file; a missing file is errNoFile.
func readValue(dir, file string) (string, error) {
	data, err := cgroupfs.ReadFile(filepath.Join(dir, file))
	if errors.Is(err, fs.ErrNotExist) {
		if _, derr := os.Stat(dir); derr != nil {
			return "", fmt.Errorf("cgroup %s: %w", dir, derr)
		}
		return "", fmt.Errorf("%s/%s: %w", dir, file, errNoFile)
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}
