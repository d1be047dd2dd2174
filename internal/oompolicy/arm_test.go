package oompolicy

import (
	"testing"

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
