package procfs

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
)

// readCgroupFile reads one cgroup file. A missing file in a directory that
// exists is ErrNoController (v1 without swap accounting, a v2 controller
// not enabled); a missing directory stays fs.ErrNotExist (cgroup gone).
func readCgroupFile(dir, file string) (string, error) {
	data, err := readString(filepath.Join(dir, file))
	if errors.Is(err, fs.ErrNotExist) {
		if _, derr := os.Stat(dir); derr != nil {
			return "", fmt.Errorf("cgroup %s: %w", dir, derr)
		}
		return "", fmt.Errorf("%s/%s: %w", dir, file, ErrNoController)
	}
	if err != nil {
		return "", err
	}
	return data, nil
}

// readBufs are readString's buffers. Reading into a new 4 KiB buffer per
// file, copied into a string at once, was half of what a render allocated
// (and the server then collected).
var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// readString reads a kernel file (cgroupfs, /proc) as cgroupfs.ReadFile
// does, into a pooled buffer. Errors are *fs.PathError.
func readString(path string) (string, error) {
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf, err := cgroupfs.ReadAppend(path, (*bp)[:0])
	*bp = buf
	if err != nil {
		return "", err
	}
	return string(buf), nil
}

// readUint reads a cgroup file holding one number.
func readUint(dir, file string) (uint64, error) {
	s, err := readCgroupFile(dir, file)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s/%s: %w", dir, file, err)
	}
	return v, nil
}

// readKeyed reads a flat keyed file ("key value" lines: memory.stat,
// cpu.stat); lines whose value is not a number are skipped.
func readKeyed(dir, file string) (map[string]uint64, error) {
	s, err := readCgroupFile(dir, file)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, nil
}

// readUints reads a file of space-separated numbers (cpuacct's per-CPU
// files).
func readUints(dir, file string) ([]uint64, error) {
	s, err := readCgroupFile(dir, file)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, f := range strings.Fields(s) {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", dir, file, err)
		}
		out = append(out, v)
	}
	return out, nil
}
