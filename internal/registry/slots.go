package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// slotFile is <rundir>/slots/<n>: the generation, and the container when
// the slot is used. A free slot keeps the generation its next use gets.
type slotFile struct {
	Gen      uint64   `json:"gen"`
	Root     string   `json:"root,omitempty"`
	ID       string   `json:"id,omitempty"`
	Features Features `json:"features"`
}

func (s *slotFile) used() bool { return s.ID != "" }

// readSlots reads every slot file; missing numbers are new free slots.
func readSlots(dir string) ([]slotFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading slots: %w", err)
	}
	var slots []slotFile
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil || n < 0 || n > 1<<20 {
			continue // a temp file of an interrupted write
		}
		var s slotFile
		b, err := readSlot(filepath.Join(dir, e.Name()))
		if err == nil {
			err = json.Unmarshal(b, &s)
		}
		if err != nil {
			return nil, fmt.Errorf("reading slot %d: %w", n, err)
		}
		for len(slots) <= n {
			slots = append(slots, slotFile{Gen: 1})
		}
		slots[n] = s
	}
	return slots, nil
}

// readSlot reads slot file p under a shared lock: a record written in
// place (overwrite) is read whole, the old one or the new one, never a
// mix (a read does not wait for a write to the same page to finish).
func readSlot(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		return nil, &os.PathError{Op: "flock", Path: p, Err: err}
	}
	return io.ReadAll(f)
}

// writeSlot replaces slot n's file. A record that fits in one page,
// over an old one that does too, is written over it in place, padded
// with blanks to the old one's length (JSON ignores them): one write
// within one page, which the worker's death cannot cut in two. Replacing
// the file (temp + rename, any other record) costs more where the
// directory is not a tmpfs: ext4 writes a file renamed over another out
// at once (auto_da_alloc), 0.1-0.7 ms of an adopt that create waits for.
func writeSlot(dir string, n int, s *slotFile) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	p := filepath.Join(dir, "slots", strconv.Itoa(n))
	if ok, err := overwrite(p, b); ok || err != nil {
		if err != nil {
			return fmt.Errorf("writing slot %d: %w", n, err)
		}
		return nil
	}
	tmp := p + ".tmp"
	err = os.WriteFile(tmp, b, 0o600)
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing slot %d: %w", n, err)
	}
	return nil
}

// overwrite writes record b over file p in place when both fit in one
// page; false (and no error) when they do not, or p does not exist yet.
func overwrite(p string, b []byte) (bool, error) {
	page := os.Getpagesize()
	if len(b) > page {
		return false, nil
	}
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil { // against readSlot
		return false, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, err
	}
	if st.Size > int64(page) {
		return false, nil
	}
	if pad := int(st.Size) - len(b); pad > 0 {
		b = append(b, bytes.Repeat([]byte{' '}, pad)...)
	}
	n, err := unix.Pwrite(fd, b, 0)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return true, err
}
