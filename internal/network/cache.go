package network

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// DefaultCacheDir is libcni's cache of every lkc container's attachments
// (results/<network>-<container id>-<interface>: the configuration, the
// runtime arguments and the result of each ADD). It is one directory for
// every root, and on disk: a container's state directory may be gone (a
// reboot, a removal by hand) while leases and rules of its networks stay,
// and a host-local store in /var/lib/cni/networks survives a reboot; the
// cache is what `lkc network gc` runs their DEL from. LKC_CNI_CACHE_DIR
// replaces it (the tests use their own).
const DefaultCacheDir = "/var/lib/lkc/cni"

// CacheDir is the cache in force for new attachments.
func CacheDir() string {
	if d := os.Getenv("LKC_CNI_CACHE_DIR"); d != "" {
		return d
	}
	return DefaultCacheDir
}

// cacheDir is libcni's cache of the attachments of rec: the shared one it
// names, or, for a record written before the cache was shared, the one in
// the container's state directory.
func (rec *record) cacheDir(stateDir string) string {
	if rec.CacheDir != "" {
		return rec.CacheDir
	}
	return filepath.Join(stateDir, cacheName)
}

// attachLockName, in the cache directory, holds one lock per container id
// (CNI_CONTAINERID): a write lock on one byte of the file at an offset
// drawn from the id (open file description locks, released when the fd
// closes or its process dies). Attach holds it from before it pins the
// namespace until its ADD is done, Detach over its DEL, and the collector
// from its look at the state directory until its DEL is done, so the
// collector never sees a container half attached, and never runs DEL of
// an attachment a create of the same id is making. Locking the whole file
// excludes every container at once (the collector's GC verb).
const attachLockName = "attach.lock"

// lockAttachments takes the lock of container id's attachments in
// cacheDir (every container's when id is ""), waiting for its holder, and
// returns its release.
func lockAttachments(cacheDir, id string) (func(), error) {
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("making the CNI cache directory: %w", err)
	}
	path := filepath.Join(cacheDir, attachLockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the attachment lock: %w", err)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if id != "" {
		lk.Start, lk.Len = lockOffset(id), 1
	}
	for {
		err = unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLKW, &lk)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, &os.PathError{Op: "lock", Path: path, Err: err}
	}
	return func() { f.Close() }, nil
}

// lockOffset is the byte of the attachment lock that stands for container
// id (a SHA-256 in hex): its first 60 bits. Two ids sharing one would
// only wait for each other.
func lockOffset(id string) int64 {
	if len(id) > 15 {
		id = id[:15]
	}
	n, err := strconv.ParseUint(id, 16, 64)
	if err != nil {
		return 0
	}
	return int64(n)
}
