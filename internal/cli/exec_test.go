package cli

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lkc-containers/lkc/internal/spec"
)

// TestProcessFromFile reads `exec --process` files as runc does: the first
// JSON value, a runtime-spec process, validated as config.json's process
// is; a malformed or refused one is an ErrInvalid.
func TestProcessFromFile(t *testing.T) {
	file := jsonFile(t, "process.json")
	g := &globals{}
	p, err := processFromFile(g, file(`{"args":["sh","-c","x"],"cwd":"/w","env":["A=1"],"user":{"uid":5,"gid":6},"noNewPrivileges":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Args, []string{"sh", "-c", "x"}) || p.Cwd != "/w" || p.UID != 5 || p.GID != 6 || !p.NoNewPrivileges {
		t.Errorf("process %+v", p)
	}
	for _, bad := range []string{`{"args":`, `{"args":"sh","cwd":"/"}`, `{"args":["sh"],"cwd":"rel"}`, `null`, `[]`} {
		if _, err := processFromFile(g, file(bad)); !errors.Is(err, spec.ErrInvalid) {
			t.Errorf("processFromFile(%s) = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := processFromFile(g, filepath.Join(t.TempDir(), "none.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
}

// jsonFile returns what writes its argument to a file named name in a
// temporary directory and returns the file's path.
func jsonFile(t *testing.T, name string) func(data string) string {
	dir := t.TempDir()
	return func(data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
}
