package evacuate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ManifestFile, in an image directory, says what `checkpoint --all` dumped
// there and how to bring it back. It is written before the first dump with
// Complete false, and again at the end: a directory whose manifest is not
// complete was left by a checkpoint that did not finish.
const ManifestFile = "manifest.json"

// manifestVersion changes when a field changes meaning.
const manifestVersion = 1

// Manifest is what `checkpoint --all` dumped.
type Manifest struct {
	Version  int       `json:"version"`
	Complete bool      `json:"complete"`
	Root     string    `json:"root"`
	Kernel   string    `json:"kernel"` // the kernel the dump ran on
	Created  time.Time `json:"created"`
	// TCPEstablished says the dumps took established TCP connections
	// along: the restore must be told the same.
	TCPEstablished bool     `json:"tcpEstablished"`
	Containers     []*Entry `json:"containers"`
}

// Entry statuses.
const (
	StatusPending = "pending" // not dumped yet (only in an incomplete manifest)
	StatusDumped  = "dumped"
	StatusFailed  = "failed"  // not dumped: Error says why; it keeps running unless Stopped
	StatusSkipped = "skipped" // not running: nothing to dump
)

// Entry is one container of a manifest; its images are in <dir>/<ID>.
type Entry struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// Stopped says --stop killed and deleted a container that was not
	// dumped.
	Stopped bool   `json:"stopped,omitempty"`
	Bundle  string `json:"bundle"` // the bundle it was created from
	Rootfs  string `json:"rootfs"` // its root filesystem on the host
	// RootfsSaved says the rootfs lies on memory-backed storage (or
	// --save-rootfs asked for it): a copy is in <dir>/<ID>/rootfs.tar.
	RootfsSaved bool `json:"rootfsSaved"`
	// RootfsOverlay says the rootfs was an overlay mounted at its path
	// (podman's, containerd's): a reboot takes the mount, which whoever
	// made it must make again before a restore from it.
	RootfsOverlay bool `json:"rootfsOverlay,omitempty"`
	Terminal      bool `json:"terminal"`
	// Paused says it was paused at the dump: the restore pauses it again.
	Paused bool `json:"paused,omitempty"`
	// Resources are the limits at the dump, `lkc update`s included.
	Resources json.RawMessage `json:"resources,omitempty"`
	// Annotations are those lkc changed on the running container
	// (org.lkc.net-rate after `update --net-rate`) as they were at the
	// dump; the restore uses them over the config's.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Stdio is where the container's fds 0-2 pointed (readlink), and
	// StdioFiles what each was when it was a file: a restore replaces a
	// file that is gone by one of the same kind, mode and size, as CRIU
	// wants.
	Stdio       [3]string    `json:"stdio"`
	StdioFiles  [3]*FileKind `json:"stdioFiles"`
	MemoryBytes int64        `json:"memoryBytes"`
	// DumpMS is how long the dump took: the container was frozen that
	// long (with --leave-running), or stopped from its start.
	DumpMS float64 `json:"dumpMs,omitempty"`
}

// reserveFile, in an image directory, holds the room of the manifest's
// last writing while the dumps run. A filesystem the dumps fill up (their
// memory grew past the estimate, another writer) would otherwise leave
// the first manifest, every container pending, beside containers that
// were dumped and stopped: restore --all would not bring them back.
const reserveFile = ManifestFile + ".reserve"

// reserveRoom makes dir's reserve file, room for the last writing of a
// manifest that is now data (its entries gain reasons, stdio and times).
func reserveRoom(dir string, data []byte, n int) error {
	size := int64(2*len(data) + 4096*n + 16384)
	f, err := os.OpenFile(filepath.Join(dir, reserveFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("reserving room for the manifest: %w", err)
	}
	defer f.Close()
	err = unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) {
		_, err = f.Write(make([]byte, size))
	}
	if err != nil {
		return fmt.Errorf("reserving room for the manifest in %s: %w", dir, err)
	}
	return nil
}

// marshalManifest is the manifest file's content.
func marshalManifest(m *Manifest) ([]byte, error) {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the manifest: %w", err)
	}
	return append(data, '\n'), nil
}

// writeManifest replaces dir's manifest atomically (temp + rename), so a
// reader never sees half of one.
func writeManifest(dir string, m *Manifest) error {
	data, err := marshalManifest(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ManifestFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing the manifest: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, ManifestFile)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing the manifest: %w", err)
	}
	return nil
}

// ReadManifest reads the manifest of image directory dir.
func ReadManifest(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(dir); serr != nil {
			return nil, fmt.Errorf("image dir %s: %w", dir, serr)
		}
		return nil, fmt.Errorf("image dir %s holds no %s: not made by checkpoint --all", dir, ManifestFile)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	if m.Version != manifestVersion {
		return nil, fmt.Errorf("%s: version %d, this lkc reads version %d", filepath.Join(dir, ManifestFile), m.Version, manifestVersion)
	}
	// A null entry (a manifest edited by hand) names no container: refused
	// here, as every use of an entry reads its fields.
	for i, e := range m.Containers {
		if e == nil {
			return nil, fmt.Errorf("%s: containers[%d] is null", filepath.Join(dir, ManifestFile), i)
		}
	}
	return &m, nil
}

// FileKind is what one of a container's fds 0-2 was at the dump.
type FileKind struct {
	Mode uint32 `json:"mode"` // st_mode: type and permission bits
	Size int64  `json:"size"`
}

// lockImageDir takes image directory dir for one checkpoint or restore
// --all, until release: two at once would undo or overwrite each other's
// files (a restore's unpacked rootfs, under a container the other one is
// restoring from it).
func lockImageDir(dir string) (release func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("image dir %s: %w", dir, errors.Unwrap(err))
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("image dir %s is in use by another checkpoint or restore --all", dir)
		}
		return nil, fmt.Errorf("locking image dir %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
