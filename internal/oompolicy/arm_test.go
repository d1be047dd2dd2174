package oompolicy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/registry"
	"github.com/lkc-containers/lkc/internal/service"
	"github.com/lkc-containers/lkc/internal/state"
)

// TestArmWaitsForInit: a record with cgroups but no init pid yet (create
// saves it before init starts) is not armed: armed then, kill-largest
// would not know which process is init and could kill it.
func TestArmWaitsForInit(t *testing.T) {
	root := t.TempDir()
	d, err := state.Create(root, "c1")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	st := &state.State{ID: "c1", Bundle: "/b", Rootfs: "/b/rootfs", Owner: "root",
		CgroupPaths: map[string]string{"memory": t.TempDir()}, Config: &config.Config{}}
	if err := d.Save(st); err != nil {
		t.Fatal(err)
	}
	s := New()
	s.epfd = -1
	s.deps = &service.Deps{Conf: hostconf.Default(), Logf: t.Logf}
	e := &registry.Entry{Root: root, ID: "c1", Features: registry.Features{OOMPolicy: "kill-largest"}}
	if a, err := s.arm(e); a != nil || err != nil {
		t.Errorf("arm of a record without an init pid: %v, %v; want nothing yet", a, err)
	}
}

// TestGroupArmFailureLoggedOnce: a group whose arming fails (here: no
// cgroup) is logged once, not at each reading of the definitions.
func TestGroupArmFailureLoggedOnce(t *testing.T) {
	s, logged := withUnarmableGroup(t)
	for i := 0; i < 12; i++ {
		if i%4 == 0 {
			s.groupsAt = time.Time{} // the definitions are read again
		}
		s.reconcileLocked()
	}
	if len(*logged) != 1 || !strings.Contains((*logged)[0], "group g: ") {
		t.Errorf("logged %q, want one line about group g", *logged)
	}
}

// withUnarmableGroup returns a service whose one group, g, has a policy
// but no cgroup, so each try to arm it logs, and what it logged.
func withUnarmableGroup(t *testing.T) (*Service, *[]string) {
	t.Helper()
	reg, err := registry.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := hostconf.Default()
	c.GroupsDir, c.GroupsParent = t.TempDir(), "/lkc-test-no-such-parent"
	def := `{"name":"g","resources":{},"oomPolicy":"kill-largest"}`
	if err := os.WriteFile(filepath.Join(c.GroupsDir, "g.json"), []byte(def), 0o600); err != nil {
		t.Fatal(err)
	}
	logged := &[]string{}
	s := New()
	s.epfd = -1
	s.deps = &service.Deps{Conf: c, Registry: reg, Logf: func(f string, a ...any) { *logged = append(*logged, fmt.Sprintf(f, a...)) }}
	return s, logged
}

// TestNoArmingAfterStop: after Stop (lkc daemon stop) a round of the loop
// arms nothing: armed then, a container's OOM killer would stay off with
// no daemon left to act (seen in the v2 VM as a round ran between Stop and
// the worker's exit). A group whose arming is tried logs; none may be.
func TestNoArmingAfterStop(t *testing.T) {
	s, logged := withUnarmableGroup(t)
	s.Stop()
	s.reconcileLocked()
	if len(*logged) != 0 {
		t.Errorf("a round after Stop tried to arm: %q", *logged)
	}
}
