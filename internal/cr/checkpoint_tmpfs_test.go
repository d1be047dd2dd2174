package cr

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// mkTree makes a small /dev-like tree: a directory, an empty file, a
// symlink.
func mkTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, err := range []error{
		os.Mkdir(filepath.Join(dir, "pts"), 0o755),
		os.WriteFile(filepath.Join(dir, "console"), nil, 0o644),
		os.Symlink("/proc/self/fd", filepath.Join(dir, "fd")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestSameTree(t *testing.T) {
	for name, change := range map[string]func(dir string) error{
		"same": func(string) error { return nil },
		"added file": func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
		},
		"removed file": func(dir string) error { return os.Remove(filepath.Join(dir, "console")) },
		"written file": func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "console"), []byte("data"), 0o644)
		},
		"mode": func(dir string) error { return os.Chmod(filepath.Join(dir, "console"), 0o600) },
		"symlink target": func(dir string) error {
			os.Remove(filepath.Join(dir, "fd"))
			return os.Symlink("/elsewhere", filepath.Join(dir, "fd"))
		},
		"in a subdirectory": func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "pts", "0"), nil, 0o644)
		},
	} {
		a, b := mkTree(t), mkTree(t)
		if err := change(a); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Stat(a, &st); err != nil {
			t.Fatal(err)
		}
		same, err := sameTree(a, b, st.Dev)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if same != (name == "same") {
			t.Errorf("%s: sameTree = %v", name, same)
		}
	}
}
