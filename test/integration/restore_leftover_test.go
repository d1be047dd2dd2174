package integration

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A restore killed while CRIU ran leaves the container's rootfs
// bind-mounted on <root>/<id>/criu-root. `lkc delete --force` must detach
// it before it removes the state dir: removing across the mount would
// delete the rootfs itself. Both leftovers a kill can leave are covered: a
// recorded container (the restore had saved its state) and a bare state
// dir (killed before that).
func TestDeleteForceAfterKilledRestore(t *testing.T) {
	for _, recorded := range []bool{true, false} {
		name := "bare"
		if recorded {
			name = "recorded"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			rootfs := e.writableRootfs()
			marker := filepath.Join(rootfs, "marker")
			if err := os.WriteFile(marker, []byte("keep"), 0o644); err != nil {
				t.Fatal(err)
			}
			id := e.id()
			dir := filepath.Join(e.root, id)
			if recorded {
				e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "100"}, func(s *specs.Spec) {
					s.Root.Path, s.Root.Readonly = rootfs, false
				}), id)
			} else if err := os.MkdirAll(dir, 0o711); err != nil {
				t.Fatal(err)
			}
			criuRoot := filepath.Join(dir, "criu-root")
			if err := os.Mkdir(criuRoot, 0o755); err != nil {
				t.Fatal(err)
			}
			// Twice: what two killed restores of the same id would stack.
			for range 2 {
				if err := unix.Mount(rootfs, criuRoot, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
					t.Fatal(err)
				}
			}
			defer unix.Unmount(criuRoot, unix.MNT_DETACH) // only if the test failed
			defer unix.Unmount(criuRoot, unix.MNT_DETACH)
			e.mustLkc("delete", "--force", id)
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("the state dir %s is still there after delete --force: %v", dir, err)
			}
			if data, err := os.ReadFile(marker); err != nil || string(data) != "keep" {
				t.Fatalf("the rootfs lost its files through the restore's mount: %q %v", data, err)
			}
		})
	}
}
