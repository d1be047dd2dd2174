package cr

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/checkpoint"
	"github.com/lkc-containers/lkc/internal/cleanup"
	"github.com/lkc-containers/lkc/internal/console"
	"github.com/lkc-containers/lkc/internal/mount"
)

// The pieces of a restore's steps (restore_plan.go): the staging mounts,
// the stdio CRIU hands the tasks, the console, the lazy-pages daemon.

// criuRoot bind-mounts the rootfs on a directory of the state dir: CRIU
// wants the root to be a mount point whose parent is not overmounted.
func criuRoot(stateDir, rootfs string) (string, error) {
	root := filepath.Join(stateDir, mount.StagingRoot)
	if err := os.Mkdir(root, 0o755); err != nil {
		return "", fmt.Errorf("creating CRIU root: %w", err)
	}
	if err := unix.Mount(rootfs, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		os.Remove(root)
		return "", fmt.Errorf("bind-mounting rootfs %s on %s: %w", rootfs, root, err)
	}
	return root, nil
}

// maskedDirSource mounts, in the state dir, the empty read-only tmpfs CRIU
// binds over each masked directory (see dumpMounts); the container's binds
// keep it once lkc detaches its own.
func maskedDirSource(stateDir string) (string, error) {
	dir := filepath.Join(stateDir, mount.StagingMasked)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating the masked-directory source: %w", err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_RDONLY, "size=0"); err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("mounting the masked-directory source: %w", err)
	}
	return dir, nil
}

// unmountRestoreDir detaches a mount lkc made in the state dir for CRIU
// and removes its directory.
func unmountRestoreDir(root string) {
	unix.Unmount(root, unix.MNT_DETACH)
	os.Remove(root)
}

// inheritStdio makes the restored tasks use lkc's own fds 0-2 (CRIU's,
// which it inherits) where the container had pipes or files from outside,
// the way runc does for pipes: the old ones are gone, and whoever restores
// provides new ones.
func inheritStdio(req *checkpoint.Request, imageDir string) error {
	data, err := os.ReadFile(filepath.Join(imageDir, descriptorsFile))
	if os.IsNotExist(err) {
		return nil // not dumped by lkc or runc: nothing to map
	}
	if err != nil {
		return fmt.Errorf("reading the container's stdio record: %w", err)
	}
	var fds []string
	if err := json.Unmarshal(data, &fds); err != nil {
		return fmt.Errorf("decoding %s: %w", descriptorsFile, err)
	}
	for i, d := range fds {
		if (strings.HasPrefix(d, "pipe:") || strings.HasPrefix(d, "file[")) && i < 3 {
			req.Opts.InheritFd = append(req.Opts.InheritFd, checkpoint.InheritFd{Key: d, Fd: i})
		}
	}
	return nil
}

// sendConsole hands the restored terminal's master to the console socket
// at path, as create does with a new one.
func sendConsole(path string, master *os.File) error {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return fmt.Errorf("connecting to console socket: %w", err)
	}
	defer conn.Close()
	raw, err := conn.(*net.UnixConn).SyscallConn()
	if err != nil {
		return fmt.Errorf("console socket: %w", err)
	}
	if cerr := raw.Control(func(fd uintptr) { err = console.SendFd(int(fd), master) }); cerr != nil {
		return fmt.Errorf("console socket: %w", cerr)
	}
	return err
}

// startLazyPages starts CRIU's lazy-pages daemon against the source's page
// server, connected as ps, for a restore with LazyPages, from another
// thread, and returns what waits for it to have started. The daemon goes
// on fetching pages after the restore returns and exits by itself once it
// has them all.
func startLazyPages(cr *checkpoint.Criu, o RestoreOpts, d *imageDirs, ps *checkpoint.PageServerConn, undo *cleanup.Stack) func() (*checkpoint.LazyPages, error) {
	return cleanup.Background(func() (*checkpoint.LazyPages, error) {
		return cr.StartLazyPages(d.imagePath, d.workPath, ps, criuLogLevel(o.Verbose))
	}, (*checkpoint.LazyPages).Stop, undo)
}
