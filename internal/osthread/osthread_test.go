package osthread

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSpareNeverTheMainThread runs work that moves its thread's cwd
// elsewhere (unshare(CLONE_FS) + chdir) many times: it must never run on
// the main thread, whose cwd, the process's as the kernel shows it, stays.
func TestSpareNeverTheMainThread(t *testing.T) {
	cwd := "/proc/" + strconv.Itoa(os.Getpid()) + "/cwd"
	before, err := os.Readlink(cwd)
	if err != nil {
		t.Fatal(err)
	}
	away := t.TempDir()
	onMain := 0
	for i := 0; i < 200; i++ {
		Spare(func() {
			if unix.Gettid() == unix.Getpid() {
				onMain++
			}
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				t.Error(err)
				return
			}
			if err := unix.Chdir(away); err != nil {
				t.Error(err)
			}
		})
	}
	if onMain > 0 {
		t.Errorf("fn ran on the main thread %d times of 200", onMain)
	}
	if after, _ := os.Readlink(cwd); after != before {
		t.Errorf("the process's cwd is %s after the runs, was %s", after, before)
	}
}
