package procview

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// sendFds sends one message carrying n fds of files under dir (as the
// clone helper sends its clones), or closes the socket when n < 0 (a
// helper that failed before it sent).
func sendFds(t *testing.T, dir string, n int) int {
	t.Helper()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(pair[0]) })
	defer unix.Close(pair[1])
	if n < 0 {
		return pair[0]
	}
	var fds []int
	for i := 0; i < n; i++ {
		f, err := os.Create(filepath.Join(dir, strings.Repeat("f", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fds = append(fds, int(f.Fd()))
	}
	if err := unix.Sendmsg(pair[1], []byte{0}, unix.UnixRights(fds...), nil, 0); err != nil {
		t.Fatal(err)
	}
	return pair[0]
}

func TestRecvFiles(t *testing.T) {
	names := []string{"proc/meminfo", "proc/stat"}
	files, err := recvFiles(sendFds(t, t.TempDir(), 2), names)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFiles(files)
	for i, f := range files {
		if f.Name() != names[i] {
			t.Errorf("file %d named %q, want %q", i, f.Name(), names[i])
		}
		if _, err := f.Stat(); err != nil {
			t.Errorf("file %d: %v", i, err)
		}
	}
}

func TestRecvFilesShort(t *testing.T) {
	for _, n := range []int{-1, 1} {
		if files, err := recvFiles(sendFds(t, t.TempDir(), n), []string{"a", "b"}); err == nil {
			closeFiles(files)
			t.Errorf("%d fds sent for 2 files: no error", n)
		}
	}
}
