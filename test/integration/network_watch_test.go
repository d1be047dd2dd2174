package integration

import (
	"testing"

	"golang.org/x/sys/unix"
)

// watchOpens watches dir for opens of itself or of a file in it, and
// returns a function that counts those since the last call.
func watchOpens(t *testing.T, dir string) func() int {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_OPEN|unix.IN_ACCESS); err != nil {
		t.Fatal(err)
	}
	return func() int {
		buf := make([]byte, 64*1024)
		n := 0
		for {
			r, err := unix.Read(fd, buf)
			if err != nil || r <= 0 {
				return n
			}
			for off := 0; off+unix.SizeofInotifyEvent <= r; {
				n++
				nameLen := int(uint32(buf[off+12]) | uint32(buf[off+13])<<8 | uint32(buf[off+14])<<16 | uint32(buf[off+15])<<24)
				off += unix.SizeofInotifyEvent + nameLen
			}
		}
	}
}
