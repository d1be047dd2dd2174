package evacuate

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cr"
)

// rootfsArchive, in a container's image directory, is its saved rootfs.
const rootfsArchive = "rootfs.tar"

// volatile says whether the files of path lie on memory-backed storage,
// which a reboot empties: a tmpfs or ramfs, or an overlay whose upper
// (written) layer is on one. Those rootfs are saved with the images; any
// other is taken to survive the reboot where it is.
func volatile(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, fmt.Errorf("statfs %s: %w", path, err)
	}
	switch st.Type {
	case unix.TMPFS_MAGIC, unix.RAMFS_MAGIC:
		return true, nil
	case unix.OVERLAYFS_SUPER_MAGIC:
		_, upper := overlayMount(path)
		if upper == "" {
			return false, nil
		}
		return volatile(upper)
	}
	return false, nil
}

// overlayMount returns the mount point and the upperdir of the overlay
// mount that holds path, "" when it cannot tell.
func overlayMount(path string) (mountpoint, upper string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", ""
	}
	defer f.Close()
	best, upper := "", ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 3 || tail[0] != "overlay" {
			continue
		}
		mp := unescapeMount(fields[4])
		if !within(path, mp) || len(mp) < len(best) {
			continue
		}
		best, upper = mp, ""
		for _, o := range strings.Split(tail[2], ",") {
			if v, ok := strings.CutPrefix(o, "upperdir="); ok {
				upper = unescapeMount(v)
			}
		}
	}
	return best, upper
}

// overlayRoot says whether path is the mount point of an overlay: a
// mount that a reboot takes, even when its layers are on disk.
func overlayRoot(path string) bool {
	var st unix.Statfs_t
	if unix.Statfs(path, &st) != nil || st.Type != unix.OVERLAYFS_SUPER_MAGIC {
		return false
	}
	mp, _ := overlayMount(path)
	return mp == filepath.Clean(path)
}

func within(path, dir string) bool {
	return path == dir || dir == "/" || strings.HasPrefix(path, dir+"/")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%3o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// treeBytes is the size of the regular files under dir, each hard link
// counted once: what an archive of it holds. The container runs
// meanwhile: a file or directory it removes between the listing of its
// parent and its reading is skipped, not an error.
func treeBytes(dir string) (int64, error) {
	var total int64
	seen := map[[2]uint64]bool{}
	gone := func(p string, err error) bool { return p != dir && errors.Is(err, fs.ErrNotExist) }
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			if gone(p, err) {
				return nil
			}
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if gone(p, err) {
				return nil
			}
			return err
		}
		if key := [2]uint64{st.Dev, st.Ino}; !seen[key] {
			seen[key] = true
			total += st.Size
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("measuring %s: %w", dir, err)
	}
	return total, nil
}

// tarFlags keep what a rootfs needs: numeric owners, modes, extended
// attributes (file capabilities), sparse files, hard links.
var tarFlags = []string{"--numeric-owner", "--xattrs", "--xattrs-include=*", "--sparse"}

// saveRootfs archives rootfs into archive with tar (the container is
// frozen meanwhile). Once abort ends, tar is killed (it only reads the
// rootfs, so the container is left as it was) and the error wraps
// cr.ErrInterrupted.
func saveRootfs(abort context.Context, rootfs, archive string) error {
	args := append([]string{"--create", "--file", archive, "--directory", rootfs}, tarFlags...)
	err := runTar(abort, append(args, "."), "saving the rootfs "+rootfs)
	if err != nil && abort.Err() != nil {
		return fmt.Errorf("saving the rootfs %s: %w by %v: tar stopped, the container is left as it was", rootfs, cr.ErrInterrupted, context.Cause(abort))
	}
	return err
}

// unpackRootfs unpacks archive into the new directory dir.
func unpackRootfs(archive, dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("unpacking the rootfs: %w", err)
	}
	args := append([]string{"--extract", "--file", archive, "--directory", dir, "--same-permissions"}, tarFlags...)
	return runTar(context.Background(), args, "unpacking the rootfs into "+dir)
}

// runTar runs tar in a process group of its own: Ctrl-C on the terminal
// of a checkpoint or restore --all signals lkc's whole group, and an
// archive under way is to finish, as lkc lets it (its container frozen
// meanwhile). ctx's end kills it.
func runTar(ctx context.Context, args []string, what string) error {
	cmd := exec.CommandContext(ctx, "tar", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.CombinedOutput()
	if err != nil {
		// tar's first complaint is the cause; its last line only says
		// that it stopped ("Exiting with failure status ...").
		msg, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return fmt.Errorf("%s: tar: %w: %s", what, err, msg)
	}
	return nil
}
