package container

import (
	"os/exec"
	"testing"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/state"
)

// TestStatusOfDeadCreate checks the status of a container whose create
// recorded its init and died before init waited on the exec fifo: init
// lives on for a moment, yet the container can never run, so it is
// stopped; while its create holds it, it is creating.
func TestStatusOfDeadCreate(t *testing.T) {
	root, id := t.TempDir(), "c1"
	dir, err := state.Create(root, id)
	if err != nil {
		t.Fatal(err)
	}
	init := exec.Command("sleep", "100")
	if err := init.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { init.Process.Kill(); init.Wait() })
	st := &state.State{ID: id, Config: &config.Config{}}
	if err := recordInit(dir, st, init.Process.Pid, ""); err != nil {
		t.Fatal(err)
	}
	if s, err := State(root, id); err != nil || s.Status != Creating {
		t.Errorf("while its create holds it: %+v, %v; want %s", s, err, Creating)
	}
	dir.Close()
	s, err := State(root, id)
	if err != nil || s.Status != Stopped || s.Pid != 0 {
		t.Errorf("after its create died: %+v, %v; want %s with no pid", s, err, Stopped)
	}
}
