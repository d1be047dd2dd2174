package migrate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// treeWriter writes a received tree under root, which it creates. Every
// entry's parent must be a directory this stream created, so no entry can
// reach outside root through a symlink or "..".
type treeWriter struct {
	root  string
	dirs  map[string]*entry // created directories, attributes set last
	order []string
	files map[string]bool // non-directories, the only valid hard link targets
	cur   *os.File        // the regular file receiving fData frames
	curE  *entry          // its entry, whose attributes wait for its content
	left  int64           // bytes cur still expects
	end   streamEnd
}

// recvTree receives one stream from sendTree into root (which must not
// exist) and returns its totals. On error, root may hold a partial tree:
// the caller removes its staging directory.
func (c *conn) recvTree(root string, progress func(int64)) (streamEnd, error) {
	w := &treeWriter{root: root, dirs: map[string]*entry{}, files: map[string]bool{}}
	defer w.closeFile()
	buf := make([]byte, maxFrame+sealOverhead)
	for {
		typ, data, err := c.readFrame(buf)
		if err != nil {
			return w.end, err
		}
		switch typ {
		case fEntry:
			err = w.entry(data)
		case fData:
			err = w.data(data)
			if progress != nil {
				progress(w.end.Bytes)
			}
		case fEnd:
			return w.end, w.finish(data)
		default:
			err = fmt.Errorf("%w: frame type %d inside a file stream", ErrProtocol, typ)
		}
		if err != nil {
			return w.end, err
		}
	}
}

func (w *treeWriter) entry(data []byte) error {
	if w.left > 0 {
		return fmt.Errorf("%w: a file ended %d bytes short", ErrProtocol, w.left)
	}
	if err := w.closeFile(); err != nil {
		return err
	}
	var e entry
	if err := json.Unmarshal(data, &e); err != nil {
		return fmt.Errorf("%w: decoding a file entry: %v", ErrProtocol, err)
	}
	if e.Path != "." && (!filepath.IsLocal(e.Path) || path.Clean(e.Path) != e.Path) {
		return fmt.Errorf("%w: file entry %q is not a clean relative path", ErrProtocol, e.Path)
	}
	if e.Path == "." && e.Type != "dir" {
		return fmt.Errorf("%w: the stream's root is a %s", ErrProtocol, e.Type)
	}
	if parent := path.Dir(e.Path); e.Path != "." && w.dirs[parent] == nil {
		return fmt.Errorf("%w: %s arrived before its directory %s", ErrProtocol, e.Path, parent)
	}
	w.end.Files++
	p := filepath.Join(w.root, filepath.FromSlash(e.Path))
	if err := w.create(p, &e); err != nil {
		return fmt.Errorf("receiving %s: %w", e.Path, err)
	}
	if e.Type != "dir" {
		w.files[e.Path] = true
	}
	return nil
}

func (w *treeWriter) create(p string, e *entry) error {
	switch e.Type {
	case "dir":
		if err := os.Mkdir(p, 0o700); err != nil {
			return err
		}
		w.dirs[e.Path] = e
		w.order = append(w.order, e.Path)
		return nil // attributes once its content is written
	case "file":
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		w.cur, w.curE, w.left = f, e, e.Size
		return nil
	case "hardlink":
		if !w.files[e.Link] {
			return fmt.Errorf("%w: hard link to %q", ErrProtocol, e.Link)
		}
		return os.Link(filepath.Join(w.root, filepath.FromSlash(e.Link)), p)
	case "symlink":
		if err := unix.Symlink(e.Link, p); err != nil {
			return err
		}
	case "char", "block", "fifo":
		mode := map[string]uint32{"char": unix.S_IFCHR, "block": unix.S_IFBLK, "fifo": unix.S_IFIFO}[e.Type]
		if err := unix.Mknod(p, mode|0o600, int(e.Rdev)); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: unknown file type %q", ErrProtocol, e.Type)
	}
	return setAttrs(p, e)
}

// setAttrs applies owner, xattrs, mode and times, in that order: chown
// clears setuid bits, and writing content or xattrs changes times.
func setAttrs(p string, e *entry) error {
	if err := os.Lchown(p, e.UID, e.GID); err != nil {
		return err
	}
	for name, val := range e.Xattrs {
		if err := unix.Lsetxattr(p, name, val, 0); err != nil {
			if name == "security.selinux" && (errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM)) {
				continue // a label this host does not use
			}
			return fmt.Errorf("setting xattr %s: %w", name, err)
		}
	}
	if e.Type != "symlink" {
		if err := unix.Fchmodat(unix.AT_FDCWD, p, e.Mode, 0); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(e.Mtime), unix.NsecToTimespec(e.Mtime)}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func (w *treeWriter) data(data []byte) error {
	if w.cur == nil || int64(len(data)) > w.left {
		return fmt.Errorf("%w: file data beyond the announced size", ErrProtocol)
	}
	if _, err := w.cur.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", w.cur.Name(), err)
	}
	w.left -= int64(len(data))
	w.end.Bytes += int64(len(data))
	return nil
}

// closeFile ends the current regular file, whose attributes wait until its
// content is written.
func (w *treeWriter) closeFile() error {
	if w.cur == nil {
		return nil
	}
	name := w.cur.Name()
	err := w.cur.Close()
	w.cur = nil
	if err == nil {
		err = setAttrs(name, w.curE)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

func (w *treeWriter) finish(data []byte) error {
	if w.left > 0 {
		return fmt.Errorf("%w: the last file ended %d bytes short", ErrProtocol, w.left)
	}
	var want streamEnd
	if err := json.Unmarshal(data, &want); err != nil {
		return fmt.Errorf("%w: decoding the stream end: %v", ErrProtocol, err)
	}
	if want != w.end {
		return fmt.Errorf("%w: the stream announced %d files and %d bytes, %d and %d arrived", ErrProtocol, want.Files, want.Bytes, w.end.Files, w.end.Bytes)
	}
	if err := w.closeFile(); err != nil {
		return err
	}
	// Children first, so writing into a directory does not undo its times.
	for i := len(w.order) - 1; i >= 0; i-- {
		e := w.dirs[w.order[i]]
		if err := setAttrs(filepath.Join(w.root, filepath.FromSlash(e.Path)), e); err != nil {
			return fmt.Errorf("receiving %s: %w", e.Path, err)
		}
	}
	return nil
}
