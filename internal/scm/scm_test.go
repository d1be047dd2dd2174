package scm

import (
	"testing"

	"golang.org/x/sys/unix"
)

// The fds of two SCM_RIGHTS messages come back in order; no control bytes
// is no fd; a truncated message is an error.
func TestRights(t *testing.T) {
	oob := append(unix.UnixRights(7, 8), unix.UnixRights(9)...)
	fds, err := Rights(oob)
	if err != nil || len(fds) != 3 || fds[0] != 7 || fds[1] != 8 || fds[2] != 9 {
		t.Fatalf("Rights: %v %v, want [7 8 9]", fds, err)
	}
	if fds, err := Rights(nil); fds != nil || err != nil {
		t.Fatalf("Rights(nil): %v %v", fds, err)
	}
	bad := unix.UnixRights(7)
	bad[0] = 0xff // a header longer than the bytes
	if _, err := Rights(bad); err == nil {
		t.Fatal("Rights of a truncated message: no error")
	}
}
