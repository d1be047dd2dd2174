package migrate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// entry describes one file of a streamed tree. Regular files are followed
// by Size bytes of fData frames; a file seen before under another name
// (same inode) comes as Link, a hard link to that name.
type entry struct {
	Path   string            `json:"path"` // relative, slash-separated, "." for the root
	Type   string            `json:"type"` // dir file symlink hardlink char block fifo
	Mode   uint32            `json:"mode"` // permission bits with setuid/setgid/sticky
	UID    int               `json:"uid"`
	GID    int               `json:"gid"`
	Size   int64             `json:"size,omitempty"`
	Mtime  int64             `json:"mtime"` // ns since the epoch
	Link   string            `json:"link,omitempty"`
	Rdev   uint64            `json:"rdev,omitempty"`
	Xattrs map[string][]byte `json:"xattrs,omitempty"`
}

// streamEnd closes a stream with what it held, so the receiver checks that
// nothing was lost.
type streamEnd struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
}

// treeSize is the number of bytes of regular files under dir (each inode
// once), for the receiver's space check and the progress total.
func treeSize(dir string) (int64, error) {
	var total int64
	seen := map[[2]uint64]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		key := [2]uint64{st.Dev, st.Ino}
		if !seen[key] {
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

// sendTree streams every file under dir; progress gets the bytes sent so
// far after each chunk.
func (c *conn) sendTree(dir string, progress func(int64)) error {
	links := map[[2]uint64]string{}
	var end streamEnd
	buf := make([]byte, maxFrame)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		e, err := describe(path, filepath.ToSlash(rel), &st, links)
		if err != nil || e == nil {
			return err
		}
		if err := c.sendEntry(e); err != nil {
			return err
		}
		end.Files++
		if e.Type != "file" {
			return nil
		}
		n, err := c.sendFile(path, e.Size, buf, func(n int64) { progress(end.Bytes + n) })
		end.Bytes += n
		return err
	})
	if err != nil {
		return fmt.Errorf("sending %s: %w", dir, err)
	}
	data, _ := json.Marshal(end)
	if err := c.writeFrame(fEnd, data); err != nil {
		return err
	}
	return c.flush()
}

// describe builds the entry for one file; nil for what cannot move (sockets
// belong to the processes that CRIU restores).
func describe(path, rel string, st *unix.Stat_t, links map[[2]uint64]string) (*entry, error) {
	e := &entry{Path: rel, Mode: st.Mode & 0o7777, UID: int(st.Uid), GID: int(st.Gid), Mtime: st.Mtim.Nano()}
	key := [2]uint64{st.Dev, st.Ino}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1 {
		if first, ok := links[key]; ok {
			e.Type, e.Link = "hardlink", first
			return e, nil
		}
		links[key] = rel
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		e.Type = "dir"
	case unix.S_IFREG:
		e.Type, e.Size = "file", st.Size
	case unix.S_IFLNK:
		target, err := os.Readlink(path)
		if err != nil {
			return nil, err
		}
		e.Type, e.Link = "symlink", target
	case unix.S_IFCHR:
		e.Type, e.Rdev = "char", st.Rdev
	case unix.S_IFBLK:
		e.Type, e.Rdev = "block", st.Rdev
	case unix.S_IFIFO:
		e.Type = "fifo"
	default:
		return nil, nil
	}
	x, err := readXattrs(path)
	if err != nil {
		return nil, err
	}
	e.Xattrs = x
	return e, nil
}

func readXattrs(path string) (map[string][]byte, error) {
	size, err := unix.Llistxattr(path, nil)
	if err != nil || size == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			err = nil
		}
		return nil, err
	}
	list := make([]byte, size)
	if size, err = unix.Llistxattr(path, list); err != nil {
		return nil, fmt.Errorf("listing xattrs of %s: %w", path, err)
	}
	out := map[string][]byte{}
	for _, name := range splitNul(list[:size]) {
		n, err := unix.Lgetxattr(path, name, nil)
		if err != nil {
			return nil, fmt.Errorf("reading xattr %s of %s: %w", name, path, err)
		}
		val := make([]byte, n)
		if n, err = unix.Lgetxattr(path, name, val); err != nil {
			return nil, fmt.Errorf("reading xattr %s of %s: %w", name, path, err)
		}
		out[name] = val[:n]
	}
	return out, nil
}

func splitNul(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != 0 {
			i++
		}
		if i > 0 {
			out = append(out, string(b[:i]))
		}
		if i < len(b) {
			i++
		}
		b = b[i:]
	}
	return out
}

func (c *conn) sendEntry(e *entry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", e.Path, err)
	}
	return c.writeFrame(fEntry, data)
}

// sendFile sends exactly size bytes of path: a file that changed size
// meanwhile fails the stream rather than arriving torn.
func (c *conn) sendFile(path string, size int64, buf []byte, progress func(int64)) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var sent int64
	for sent < size {
		chunk := buf[:min(int64(len(buf)), size-sent)]
		if _, err := io.ReadFull(f, chunk); err != nil {
			return sent, fmt.Errorf("reading %s: %w (did it shrink while being sent?)", path, err)
		}
		if err := c.writeFrame(fData, chunk); err != nil {
			return sent, err
		}
		sent += int64(len(chunk))
		progress(sent)
	}
	return sent, nil
}

// rateLimiter paces writes to a byte rate.
type rateLimiter struct {
	rate  float64 // bytes per second
	start time.Time
	sent  float64
}

func newRateLimiter(bytesPerSec int64) *rateLimiter {
	if bytesPerSec <= 0 {
		return nil
	}
	return &rateLimiter{rate: float64(bytesPerSec), start: time.Now()}
}

func (l *rateLimiter) wait(n int) {
	l.sent += float64(n)
	due := l.start.Add(time.Duration(l.sent / l.rate * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
}
