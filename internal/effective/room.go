package effective

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MemRoom is how much more memory a process may take, and what sets it.
type MemRoom struct {
	Bytes uint64
	// At is "MemAvailable" (the host's memory) or the cgroup directory
	// whose limit leaves the least.
	At string
}

// MemoryRoom is how much more memory process pid may take: the least of
// the host's MemAvailable and, at each level of its memory cgroup that
// has a limit (its own and its ancestors'), that limit less what the
// cgroup holds beyond its inactive file cache (the kernel drops that
// cache first; a tmpfs page, anonymous memory and active cache it does
// not simply drop). Files written to a tmpfs take this memory: their
// pages count in the writer's cgroup and are not available to the host.
func MemoryRoom(root string, pid int) (*MemRoom, error) {
	avail, err := memAvailable(filepath.Join(root, "proc/meminfo"))
	if err != nil {
		return nil, err
	}
	r := &MemRoom{Bytes: avail, At: "MemAvailable"}
	cg, err := ForPid(root, pid)
	if err != nil {
		return nil, err
	}
	dir, v2, ok, err := cg.Dir("memory")
	if err != nil || !ok {
		return r, err
	}
	l := &Limits{}
	if err := readMemory(l, dir, v2); err != nil || l.Memory == nil {
		return r, err
	}
	for _, lvl := range l.Memory.Levels {
		if !lvl.Set {
			continue
		}
		held, err := heldMemory(lvl.Cgroup, v2)
		if err != nil {
			return nil, err
		}
		left := uint64(0)
		if lvl.Value > held {
			left = lvl.Value - held
		}
		if left < r.Bytes {
			r.Bytes, r.At = left, lvl.Cgroup
		}
	}
	return r, nil
}

// heldMemory is what memory cgroup dir holds (v1 memory.usage_in_bytes,
// v2 memory.current, both counting its descendants) less its inactive
// file cache (memory.stat, also counting them): the working set, as the
// kubelet counts it.
func heldMemory(dir string, v2 bool) (uint64, error) {
	usageFile, inactiveKey := "memory.usage_in_bytes", "total_inactive_file"
	if v2 {
		usageFile, inactiveKey = "memory.current", "inactive_file"
	}
	s, err := readValue(dir, usageFile)
	if err != nil {
		return 0, err
	}
	usage, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s/%s: %w", dir, usageFile, err)
	}
	inactive, err := statValue(filepath.Join(dir, "memory.stat"), inactiveKey)
	if err != nil {
		return 0, err
	}
	if inactive > usage {
		return 0, nil
	}
	return usage - inactive, nil
}

// statValue reads key's value from a file of "key value" lines
// (memory.stat); a missing key is 0.
func statValue(path, key string) (uint64, error) {
	v, err := lineValue(path, key)
	if err != nil || v == "" {
		return 0, err
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %s: %w", path, key, err)
	}
	return n, nil
}

// memAvailable reads MemAvailable from a /proc/meminfo, in bytes.
func memAvailable(path string) (uint64, error) {
	v, err := lineValue(path, "MemAvailable:")
	if err != nil {
		return 0, err
	}
	if v == "" {
		return 0, fmt.Errorf("%s: no MemAvailable", path)
	}
	kb, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: MemAvailable: %w", path, err)
	}
	return kb << 10, nil
}

// lineValue returns the second field of the first line of path whose
// first field is key, "" when there is none.
func lineValue(path, key string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == key {
			return fields[1], nil
		}
	}
	return "", sc.Err()
}

// Space is the room a process has to write into a directory.
type Space struct {
	// Free is what it may still write there: the least of FS and, on
	// memory-backed storage, Memory.
	Free uint64
	// FS is the filesystem's free space for an unprivileged writer
	// (unbounded on a ramfs, which has no size).
	FS uint64
	// Kind is "tmpfs" or "ramfs" for memory-backed storage, else "".
	Kind string
	// Memory, on memory-backed storage, is the writer's memory room:
	// every file written there takes that much memory.
	Memory *MemRoom
}

// DirSpace is the room process pid (under root: "/" on the machine) has
// to write into dir: its filesystem's free space and, when that is a
// tmpfs or ramfs, no more than the memory the process may still take
// (MemoryRoom), which such a filesystem's size does not bound.
func DirSpace(root, dir string, pid int) (*Space, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil, fmt.Errorf("checking free space in %s: %w", dir, err)
	}
	s := &Space{FS: math.MaxUint64}
	if st.Bsize > 0 && st.Bavail <= math.MaxUint64/uint64(st.Bsize) {
		s.FS = st.Bavail * uint64(st.Bsize)
	}
	switch st.Type {
	case unix.TMPFS_MAGIC:
		s.Kind = "tmpfs"
	case unix.RAMFS_MAGIC:
		s.Kind, s.FS = "ramfs", math.MaxUint64
	}
	s.Free = s.FS
	if s.Kind == "" {
		return s, nil
	}
	var err error
	if s.Memory, err = MemoryRoom(root, pid); err != nil {
		return nil, fmt.Errorf("checking the memory that files in %s (a %s) take: %w", dir, s.Kind, err)
	}
	s.Free = min(s.FS, s.Memory.Bytes)
	return s, nil
}

// String says how much is free, and when memory bounds it, why: "12 MiB
// free (a tmpfs with 1024 MiB free, whose files take memory: 12 MiB left
// under the limit of memory cgroup /sys/fs/cgroup/memory/x)".
func (s *Space) String() string {
	free := fmt.Sprintf("%d MiB free", s.Free>>20)
	if s.Memory == nil || s.FS <= s.Memory.Bytes {
		return free
	}
	fs := "a ramfs"
	if s.Kind == "tmpfs" {
		fs = fmt.Sprintf("a tmpfs with %d MiB free", s.FS>>20)
	}
	by := "the host's available memory (MemAvailable)"
	if s.Memory.At != "MemAvailable" {
		by = "the limit of memory cgroup " + s.Memory.At
	}
	return fmt.Sprintf("%s (%s, whose files take memory: %d MiB left under %s)", free, fs, s.Memory.Bytes>>20, by)
}
