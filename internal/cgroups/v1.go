package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lkc-containers/lkc/internal/config"
)

// v1 is a container's cgroup on the v1 hierarchies: one directory per
// mounted controller hierarchy (named hierarchies such as name=systemd and
// the hybrid v2 mount are left alone).
type v1 struct {
	dirs    map[string]string // hierarchy (e.g. "memory", "cpu,cpuacct") -> dir
	made    []string          // the dirs Create made
	parents []string          // the directories above dirs Create made
	created bool              // Create ran: Destroy removes only made
}

func newV1(h Host, own map[string]string, path string) (*v1, error) {
	m := &v1{dirs: map[string]string{}}
	for ctrl, ownPath := range own {
		if ctrl == "" || strings.HasPrefix(ctrl, "name=") {
			continue
		}
		mnt := filepath.Join(h.Root, ctrl)
		if _, err := os.Stat(mnt); err != nil {
			continue
		}
		m.dirs[ctrl] = under(mnt, ownPath, path)
	}
	if len(m.dirs) == 0 {
		return nil, fmt.Errorf("no cgroup v1 controllers mounted under %s", h.Root)
	}
	return m, nil
}

func (m *v1) Paths() map[string]string { return m.dirs }

func (m *v1) dir(ctrl string) (string, bool) {
	for k, d := range m.dirs {
		for _, c := range strings.Split(k, ",") {
			if c == ctrl {
				return d, true
			}
		}
	}
	return "", false
}

func (m *v1) Create() error {
	m.created = true
	for ctrl, dir := range m.dirs {
		base := filepath.Dir(dir)
		for {
			if _, err := os.Stat(base); err == nil {
				break
			}
			base = filepath.Dir(base)
		}
		made, err := mkdirTracked(base, dir)
		leaf, parents := splitMade(made, dir)
		m.made, m.parents = append(m.made, leaf...), append(m.parents, parents...)
		if err != nil {
			return err
		}
		if strings.Contains(ctrl, "cpuset") {
			if err := inheritCpuset(dir, made); err != nil {
				return err
			}
		}
	}
	return nil
}

// inheritCpuset gives dir, and every cgroup above it that has none, the
// CPUs and memory nodes of the nearest ancestor that has them: on v1 a
// cpuset cgroup starts empty and refuses tasks (ENOSPC), whether lkc made
// it (made) or another tool made a parent without filling it, as a pod's
// parent can be. runc fills such parents too. The ones made are known
// empty and not read.
func inheritCpuset(dir string, made []string) error {
	isNew := map[string]bool{}
	for _, d := range made {
		isNew[d] = true
	}
	for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
		if _, err := cpusetValue(dir, file, isNew); err != nil {
			return err
		}
	}
	return nil
}

// cpusetValue returns dir's file, copying its parent's into it first when
// it is empty.
func cpusetValue(dir, file string, isNew map[string]bool) (string, error) {
	if !isNew[dir] {
		v, err := readFile(dir, file)
		if err != nil {
			return "", fmt.Errorf("reading %s of %s: %w", file, dir, err)
		}
		if v != "" {
			return v, nil
		}
	}
	v, err := cpusetValue(filepath.Dir(dir), file, isNew)
	if err != nil {
		return "", err
	}
	return v, writeFile(dir, file, v)
}

func (m *v1) Placement() ([]string, string) {
	files := make([]string, 0, len(m.dirs))
	for _, dir := range m.dirs {
		files = append(files, filepath.Join(dir, "tasks"))
	}
	return files, ""
}

// Set writes every limit r sets. Missing controllers and files fail with
// ErrNotSupported naming the resource, except the few runc skips.
func (m *v1) Set(r *config.Resources) error {
	w, err := m.plan(r)
	if err != nil {
		return err
	}
	return applyAll(w)
}

// plan lists the writes of r, each in the directory of its controller.
func (m *v1) plan(r *config.Resources) ([]write, error) {
	if len(r.Unified) > 0 {
		return nil, fmt.Errorf("linux.resources.unified: %w (cgroup v1 has no unified files)", ErrNotSupported)
	}
	var s []setting
	for _, add := range []func(*config.Resources) []setting{setV1Memory, setV1CPU, setV1Misc} {
		s = append(s, add(r)...)
	}
	s = append(s, m.setV1Blkio(r)...)
	w := make([]write, 0, len(s))
	for _, set := range s {
		dir, ok := m.dir(set.ctrl)
		if !ok {
			return nil, fmt.Errorf("linux.resources.%s: %w (no %s controller)", set.key, ErrNotSupported, set.ctrl)
		}
		w = append(w, write{setting: set, dir: dir})
	}
	return w, nil
}

func deviceRule(d config.DeviceRule) string {
	num := func(n int64) string {
		if n < 0 {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	if d.Type == 'a' {
		return "a"
	}
	return fmt.Sprintf("%c %s:%s %s", d.Type, num(d.Major), num(d.Minor), d.Access)
}

func (m *v1) Procs() ([]int, error) {
	for _, ctrl := range []string{"pids", "freezer", "memory"} {
		if dir, ok := m.dir(ctrl); ok {
			return readProcs(dir)
		}
	}
	for _, dir := range m.dirs {
		return readProcs(dir)
	}
	return nil, nil
}

func (m *v1) freezerState(want string) error {
	dir, ok := m.dir("freezer")
	if !ok {
		return fmt.Errorf("freeze: %w (no freezer controller)", ErrNotSupported)
	}
	if err := writeFile(dir, "freezer.state", want); err != nil {
		return err
	}
	polls := 0
	return waitFor("freezer.state "+want+" in "+dir, func() (bool, error) {
		got, err := readFile(dir, "freezer.state")
		if err != nil || got == want {
			return true, err
		}
		polls++
		if want == "FROZEN" && polls%20 == 0 {
			// Writing FROZEN to a FREEZING cgroup does not ask its tasks
			// again, and a task that missed the first request (seen here
			// rarely, right after a container's start) leaves it FREEZING
			// for good: thaw and start over, as runc does.
			if err := writeFile(dir, "freezer.state", "THAWED"); err != nil {
				return false, err
			}
		}
		return false, writeFile(dir, "freezer.state", want)
	})
}

func (m *v1) Freeze() error { return m.freezerState("FROZEN") }
func (m *v1) Thaw() error   { return m.freezerState("THAWED") }

// Frozen reports whether a freeze is in force, as v2's cgroup.freeze
// does: FREEZING too, which the freezer reads until each task has frozen,
// e.g. while a process moved into a frozen cgroup has yet to (an exec
// into a paused container) or after a freeze that timed out.
func (m *v1) Frozen() (bool, error) {
	dir, ok := m.dir("freezer")
	if !ok {
		return false, nil
	}
	got, err := readFile(dir, "freezer.state")
	return got == "FROZEN" || got == "FREEZING", err
}

func (m *v1) FreezerFile() string {
	if dir, ok := m.dir("freezer"); ok {
		return filepath.Join(dir, "freezer.state")
	}
	return ""
}

func (m *v1) Parents() []string { return m.parents }

func (m *v1) Destroy() error {
	var first error
	if m.created {
		first = rmdirMade(m.made)
	} else {
		for _, d := range m.dirs {
			if err := removeTree(d); err != nil && first == nil {
				first = err
			}
		}
	}
	if first != nil {
		return first
	}
	return removeParents(m.parents)
}
