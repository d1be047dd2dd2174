package rulesengine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lkc-containers/lkc/internal/rules"
)

// TestCgrulesDestinationStaysInHierarchy: a cgrules destination whose
// template %p became a process's comm (its executable unreadable, as a
// zombie's is) of "../../esc" must not leave the hierarchy: nothing is
// made outside it, and the placement fails.
func TestCgrulesDestinationStaysInHierarchy(t *testing.T) {
	root := t.TempDir()
	mnt := filepath.Join(root, "a", "b", "cpu")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &Engine{mounts: map[string]string{"cpu": mnt}}
	rs, err := rules.Parse(strings.NewReader("* cpu users/%p\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	p := &rules.Process{Pid: 4242, Comm: "../../../esc"}
	m := rules.Find(rs, p, rules.ParseUsers(nil, nil))
	if m == nil {
		t.Fatal("no match")
	}
	err = e.cgroupPlacement(placement{}, m.Targets[0])
	if _, serr := os.Stat(filepath.Join(root, "a", "esc")); serr == nil {
		t.Errorf("destination %q made %s, outside the hierarchy %s", m.Targets[0].Name, filepath.Join(root, "a", "esc"), mnt)
	}
	if err == nil || !strings.Contains(err.Error(), ". and .. are not allowed") {
		t.Errorf("placement of %q: %v, want a refusal of ..", m.Targets[0].Name, err)
	}
}
