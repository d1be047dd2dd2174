package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// write is one planned change of a cgroup: a setting written in dir, or,
// when apply is set, a change that is no file write (v2's device program).
type write struct {
	setting
	dir   string
	apply func() error
}

func (w write) do() error {
	if w.apply != nil {
		return w.apply()
	}
	return w.setting.write(w.dir)
}

// applyAll makes the writes in order and stops at the first refusal: for
// a cgroup being created, whose failure removes it anyway.
func applyAll(ws []write) error {
	for _, w := range ws {
		if err := w.do(); err != nil {
			return err
		}
	}
	return nil
}

// present drops the optional writes whose file the kernel lacks and
// refuses, before anything is written, a write whose file is missing.
func present(ws []write) ([]write, error) {
	out := ws[:0:0]
	for _, w := range ws {
		if w.apply == nil && !exists(filepath.Join(w.dir, w.file)) {
			if w.optional {
				continue
			}
			if _, err := os.Stat(w.dir); err != nil {
				return nil, fmt.Errorf("linux.resources.%s: %w", w.key, err)
			}
			return nil, w.missing()
		}
		out = append(out, w)
	}
	return out, nil
}

// undoableFirst orders the writes that can be written back before those
// that cannot (device rules), keeping the order within each, so a refusal
// among the first leaves nothing changed.
func undoableFirst(ws []write) []write {
	var first, last []write
	for _, w := range ws {
		if w.apply != nil || w.final {
			last = append(last, w)
		} else {
			first = append(first, w)
		}
	}
	return append(first, last...)
}

// saved is a value to write back into a file to undo a write.
type saved struct {
	key, dir, file, value string
}

// applyUndoable makes the writes in order; when the kernel refuses one,
// it writes back, newest first, the values the earlier ones replaced, so
// the cgroup is left as it was, and returns the refusal.
func applyUndoable(ws []write) error {
	var done []saved
	for _, w := range undoableFirst(ws) {
		old, undoable, err := w.before()
		if err == nil {
			err = w.do()
		}
		if err != nil {
			return undo(done, err)
		}
		if undoable {
			done = append(done, old)
		}
	}
	return nil
}

// before reads what w is about to replace.
func (w write) before() (saved, bool, error) {
	if w.apply != nil || w.final {
		return saved{}, false, nil
	}
	old, err := readFile(w.dir, w.file)
	if err != nil {
		return saved{}, false, fmt.Errorf("linux.resources.%s: %w", w.key, err)
	}
	restore := w.restore
	if restore == nil {
		restore = restoreWhole
	}
	v, ok := restore(old, w.value)
	return saved{key: w.key, dir: w.dir, file: w.file, value: v}, ok, nil
}

// undo writes back the saved values, newest first, after the refusal err.
func undo(done []saved, err error) error {
	var failed []error
	for i := len(done) - 1; i >= 0; i-- {
		s := done[i]
		if werr := writeFile(s.dir, s.file, s.value); werr != nil {
			failed = append(failed, fmt.Errorf("linux.resources.%s: %w", s.key, werr))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w; undoing the earlier changes failed: %w", err, errors.Join(failed...))
	}
	if len(done) > 0 {
		return fmt.Errorf("%w (earlier changes undone)", err)
	}
	return err
}

// restoreWhole puts back a file holding one value ("max", "50000 100000").
// An empty cpuset is written back as a newline: a write of no bytes does
// not reach the kernel.
func restoreWhole(old, _ string) (string, bool) {
	if old == "" {
		return "\n", true
	}
	return old, !strings.Contains(old, "\n")
}

// restoreKeyed returns a restore for a file of one line per key (a device
// "8:0", an rdma device, an interface), where a write changes the line of
// its value's first field: the old line goes back, or unset(key) when
// there was none (a nil unset: nothing to put back).
func restoreKeyed(unset func(key string) string) func(old, value string) (string, bool) {
	return func(old, value string) (string, bool) {
		key, _, _ := strings.Cut(value, " ")
		for _, line := range strings.Split(old, "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[0] == key {
				return line, true
			}
		}
		if unset == nil {
			return "", false
		}
		return unset(key), true
	}
}

// restoreUnified puts back a unified file: one value, or one line per key.
func restoreUnified(old, value string) (string, bool) {
	if !strings.Contains(old, "\n") {
		return restoreWhole(old, value)
	}
	return restoreKeyed(nil)(old, value)
}

// restoreFlag puts back the "name N" line of a flags file such as v1's
// memory.oom_control ("oom_kill_disable 0").
func restoreFlag(name string) func(old, value string) (string, bool) {
	return func(old, _ string) (string, bool) {
		for _, line := range strings.Split(old, "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				return v, true
			}
		}
		return "", false
	}
}
