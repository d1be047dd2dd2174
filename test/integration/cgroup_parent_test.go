package integration

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lkc-containers/lkc/internal/testutil"
)

// cgHierarchy is one cgroup hierarchy lkc places containers in: where it
// is mounted and this process's own cgroup in it.
type cgHierarchy struct{ name, mnt, own string }

// ownHierarchies lists the hierarchies as lkc picks them: every mounted v1
// controller hierarchy (not the named ones nor the cgroup2 mount of a
// hybrid host), or the one hierarchy of a pure v2 host.
func ownHierarchies() ([]cgHierarchy, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	v2 := cgroupV2()
	var out []cgHierarchy
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || strings.HasPrefix(parts[1], "name=") || (parts[1] == "") != v2 {
			continue
		}
		mnt := filepath.Join("/sys/fs/cgroup", parts[1])
		if _, err := os.Stat(mnt); err != nil {
			continue
		}
		out = append(out, cgHierarchy{name: parts[1], mnt: mnt, own: parts[2]})
	}
	return out, sc.Err()
}

// testCgroupBase returns an absolute cgroup path that is this process's
// own cgroup or beneath it in every hierarchy, so that containers given
// absolute paths under it never land outside the tests' own subtree (this
// host's rule). On v1 the own cgroups differ per hierarchy (here memory is
// /process_api/<id>, every other /): the deepest of them lies beneath all
// the others, so it is the base. Hosts where no such path exists skip.
func testCgroupBase(t *testing.T) string {
	t.Helper()
	hs, err := ownHierarchies()
	if err != nil || len(hs) == 0 {
		t.Fatalf("reading own cgroups: %v (%d hierarchies)", err, len(hs))
	}
	base := "/"
	for _, h := range hs {
		if len(h.own) > len(base) {
			base = h.own
		}
	}
	for _, h := range hs {
		if h.own != "/" && h.own != base && !strings.HasPrefix(base, h.own+"/") {
			t.Skipf("no cgroup path is beneath the own cgroup in every hierarchy (%s is at %s, another at %s)", h.name, h.own, base)
		}
	}
	return base
}

// cgParent is an absolute cgroup path a test gave its containers, with
// the directories above it that did not exist before, per hierarchy.
type cgParent struct {
	path     string
	relative bool // path is beneath the own cgroup of each hierarchy
	above    []string
	kept     bool // the path may be left: no leak when it is
}

// in is the parent's directory in hierarchy h.
func (p *cgParent) in(h cgHierarchy) string {
	if p.relative {
		return filepath.Join(h.mnt, h.own, p.path)
	}
	return filepath.Join(h.mnt, p.path)
}

// cgroupParent returns a fresh absolute cgroup path beneath this process's
// own cgroup in every hierarchy (testCgroupBase) for the test's containers.
// After the containers are deleted, the env's cleanup fails the test if
// the path is left in any hierarchy, then removes it and the empty
// directories above it that did not exist before.
func (e *env) cgroupParent(name string) string {
	e.t.Helper()
	return e.addCgroupParent(name, false).path
}

// keptCgroupParent is cgroupParent for a path the test makes itself (to
// set limits on it): the cleanup removes it without calling it a leak.
func (e *env) keptCgroupParent(name string) string {
	e.t.Helper()
	p := e.addCgroupParent(name, false)
	p.kept = true
	return p.path
}

// relativeCgroupParent is cgroupParent for a relative path, which lkc
// places beneath the own cgroup of each hierarchy.
func (e *env) relativeCgroupParent(name string) string {
	e.t.Helper()
	return e.addCgroupParent(name, true).path
}

func (e *env) addCgroupParent(name string, relative bool) *cgParent {
	e.t.Helper()
	hs, _ := ownHierarchies()
	p := &cgParent{path: fmt.Sprintf("lkc-it-%d-%s-%d", os.Getpid(), name, len(e.cgParents)), relative: relative}
	if !relative {
		p.path = filepath.Join(testCgroupBase(e.t), p.path)
	}
	for _, h := range hs {
		for d := filepath.Dir(p.in(h)); d != h.mnt; d = filepath.Dir(d) {
			if _, err := os.Stat(d); err != nil {
				p.above = append(p.above, d)
			}
		}
	}
	e.cgParents = append(e.cgParents, p)
	return p
}

// cleanupCgroupParents runs once the env's containers are deleted.
func (e *env) cleanupCgroupParents() {
	hs, _ := ownHierarchies()
	for _, p := range e.cgParents {
		for _, h := range hs {
			dir := p.in(h)
			if _, err := os.Stat(dir); err != nil {
				continue
			}
			if !p.kept {
				e.t.Errorf("leak: cgroup %s left behind", dir)
			}
			testutil.RemoveCgroupTree(e.t, dir)
		}
		slices.SortFunc(p.above, func(a, b string) int { return len(b) - len(a) })
		for _, d := range p.above {
			os.Remove(d) // one in use by another test stays
		}
	}
}
