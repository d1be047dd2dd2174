package fdstore

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// MapShared maps size bytes of memfd f shared, or of a new sparse memfd
// named name when f is nil: memory a service writes for its successor,
// which finds f among the fds the holder kept. f (or the new memfd) is
// returned with the mapping; on error it is closed.
func MapShared(f *os.File, name string, size int) (*os.File, []byte, error) {
	if f == nil {
		fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
		if err != nil {
			return nil, nil, fmt.Errorf("memfd %s: %w", name, err)
		}
		f = os.NewFile(uintptr(fd), name)
		if err := f.Truncate(int64(size)); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("sizing memfd %s: %w", name, err)
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Size < int64(size) {
		f.Close()
		return nil, nil, fmt.Errorf("memfd %s: size %d, want %d (%v)", name, st.Size, size, err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("mapping memfd %s: %w", name, err)
	}
	return f, mem, nil
}
