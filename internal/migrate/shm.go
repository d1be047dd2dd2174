package migrate

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// shmDir is where a post-copy's images are staged when it is a tmpfs. Those
// images hold no memory, only ~40 small files, all written and read
// during the downtime: on this host's ext4 each new file costs ~125 µs
// (open, write, chown, chmod, times), on a tmpfs ~10 (docs/migrate.md).
// Stop-and-copy and pre-copy images carry the memory and stay on disk.
var shmDir = "/dev/shm"

// stagingBase returns the directory to stage a post-copy's images under:
// shmDir when it is a tmpfs, else "" (the system's temporary directory).
func stagingBase() string {
	var st unix.Statfs_t
	if unix.Statfs(shmDir, &st) == nil && st.Type == unix.TMPFS_MAGIC {
		return shmDir
	}
	return ""
}

// removeImages removes a receiver's images directory, and what it points
// at when it is a link to a staging directory in shmDir.
func removeImages(images string) error {
	if target, err := os.Readlink(images); err == nil && filepath.Dir(target) == shmDir {
		if err := os.RemoveAll(target); err != nil {
			return err
		}
	}
	return os.RemoveAll(images)
}
