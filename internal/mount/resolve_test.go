package mount

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// rootfs makes a directory to play the rootfs and opens it.
func rootfs(t *testing.T) (string, *os.File) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return dir, f
}

func sameFile(t *testing.T, f *os.File, path string) bool {
	t.Helper()
	var a, b unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(path, &b); err != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

func TestMkdirAllInRootFollowsSymlinksInside(t *testing.T) {
	outside := t.TempDir()
	dir, root := rootfs(t)
	os.Symlink(outside, filepath.Join(dir, "abs"))                           // dangling inside the root
	os.Symlink("../../../../../../../.."+outside, filepath.Join(dir, "rel")) // climbs above /
	os.MkdirAll(filepath.Join(dir, "run/real"), 0o755)
	os.Symlink("../run", filepath.Join(dir, "varrun"))
	os.Symlink("/run", filepath.Join(dir, "absrun"))
	os.Symlink("loop2", filepath.Join(dir, "loop1"))
	os.Symlink("loop1", filepath.Join(dir, "loop2"))
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)

	cases := map[string]string{
		"/abs/x":              outside + "/x",
		"/rel/y":              outside + "/y",
		"/../../../tmp/z":     "/tmp/z",
		"/varrun/real/new":    "/run/real/new",
		"/varrun/../up/./new": "/up/new",
		"a/b/c":               "/a/b/c",
		// Existing ones, opened whole.
		"/run/real":           "/run/real",
		"/varrun/real":        "/run/real",
		"/absrun/../run/real": "/run/real",
		"/":                   "/",
	}
	for in, want := range cases {
		h, err := mkdirAllInRoot(root, in, 0o755)
		if err != nil {
			t.Errorf("mkdirAllInRoot(%q): %v", in, err)
			continue
		}
		if !sameFile(t, h, filepath.Join(dir, want)) {
			t.Errorf("mkdirAllInRoot(%q) is not %s inside the rootfs", in, want)
		}
		h.Close()
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("created outside the rootfs: %v", entries)
	}
	if _, err := mkdirAllInRoot(root, "/loop1/x", 0o755); !errors.Is(err, unix.ELOOP) {
		t.Errorf("symlink loop: %v, want ELOOP", err)
	}
	if _, err := mkdirAllInRoot(root, "/file", 0o755); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("a file as directory: %v, want ENOTDIR", err)
	}
	if _, err := mkdirAllInRoot(root, "/file/x", 0o755); err == nil {
		t.Error("mkdir under a file succeeded")
	}
}

func TestOpenInRootStaysInside(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), nil, 0o600)
	dir, root := rootfs(t)
	os.Symlink(outside, filepath.Join(dir, "abs"))
	os.Symlink("/proc/self/root", filepath.Join(dir, "magic"))
	if f, err := openInRoot(root, "/abs/secret"); err == nil {
		f.Close()
		t.Error("openInRoot followed an absolute symlink out of the rootfs")
	}
	if f, err := openInRoot(root, "/../../../../"+outside+"/secret"); err == nil {
		f.Close()
		t.Error("openInRoot followed .. out of the rootfs")
	}
	os.MkdirAll(filepath.Join(dir, "proc/self"), 0o755)
	if f, err := openInRoot(root, "/magic/etc"); err == nil {
		f.Close()
		t.Error("openInRoot reached the host through a /proc magic link")
	}
	f, err := openInRoot(root, "/../..")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !sameFile(t, f, dir) {
		t.Error("/../.. does not stop at the rootfs")
	}
}
