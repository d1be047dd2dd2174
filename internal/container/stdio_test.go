package container

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCopyOutKeepsOutputWrittenAtExit: the process writes its last output
// and exits (finish marks it exited and wakes the copy) just after the copy
// found the pipe empty and before it decided whether to stop. The copy
// must still deliver that output: `lkc exec ID sh -c "cat a; head b"` once
// printed a and nothing of b (TestProcViewCheckpointRestore).
func TestCopyOutKeepsOutputWrittenAtExit(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	dst, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	p := &stdioPipes{}
	exited := false
	defer func(read func(int, []byte) (int, error)) { readPipe = read }(readPipe)
	readPipe = func(fd int, b []byte) (int, error) {
		n, err := unix.Read(fd, b)
		if err == unix.EAGAIN && !exited {
			exited = true
			// The process's last write, its exit, and finish's first
			// steps, all between this read and the copy's next look.
			if _, err := w.Write([]byte("last line\n")); err != nil {
				t.Error(err)
			}
			p.exited.Store(true)
			r.SetReadDeadline(time.Now())
		}
		return n, err
	}
	p.copies.Add(1)
	p.copyOut(dst, r)
	got, err := os.ReadFile(dst.Name())
	if err != nil || string(got) != "last line\n" {
		t.Errorf("copied %q, %v; want the output written as the process exited", got, err)
	}
	if !exited {
		t.Errorf("the copy never found the pipe empty: the test proved nothing")
	}
}
