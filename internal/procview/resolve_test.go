package procview

import (
	"testing"

	"github.com/lkc-containers/lkc/internal/registry"
	"github.com/lkc-containers/lkc/internal/state"
)

// TestResolveReadsAnUnreadyStateOnce: while a container's state file has
// no init (create has not recorded it yet: the CLI's look-ups come then),
// each resolve of its files does not decode the same version again; a new
// version, the one with init, is read.
func TestResolveReadsAnUnreadyStateOnce(t *testing.T) {
	root := t.TempDir()
	d, err := state.Create(root, "c")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	st := &state.State{ID: "c", Rootfs: "/", CgroupPaths: map[string]string{}}
	if err := d.Save(st); err != nil {
		t.Fatal(err)
	}
	reads := 0
	loadState = func(e *registry.Entry) (*state.State, error) {
		reads++
		return e.LoadState()
	}
	t.Cleanup(func() { loadState = (*registry.Entry).LoadState })
	v := &view{entry: &registry.Entry{Root: root, ID: "c"}}
	for i := 0; i < 3; i++ {
		if _, ok := v.resolve(); ok {
			t.Fatal("resolved a container without init")
		}
	}
	if reads != 1 {
		t.Errorf("3 resolves of one state without init read it %d times, want 1", reads)
	}
	st.InitPid = 1
	if err := d.Save(st); err != nil {
		t.Fatal(err)
	}
	v.resolve()
	if reads != 2 {
		t.Errorf("the state with init was read %d times in all, want 2 (the new version read)", reads)
	}
}
