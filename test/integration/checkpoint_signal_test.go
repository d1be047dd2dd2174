package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/checkpoint"
)

// TestCheckpointLazyPagesInterrupted stops a lazy checkpoint (`--lazy-pages
// --page-server`) with SIGTERM and with SIGINT while its CRIU waits for a
// restore to fetch the pages. lkc died and left that CRIU behind, its page
// server listening, the container frozen and marked as being dumped.
// Now lkc stops its CRIU and fails in one line naming the signal; the
// container runs on with its memory intact, and no CRIU of lkc's is left.
func TestCheckpointLazyPagesInterrupted(t *testing.T) {
	requireCriu(t)
	if why := checkpoint.CanServeLazyPages(); why != nil {
		t.Skipf("CRIU cannot serve lazy pages here: %v", why)
	}
	for i, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		name := unix.SignalName(sig)
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			const size = 32 << 20
			id, root, _ := e.holder(size)
			images := filepath.Join(t.TempDir(), "images")
			port := strconv.Itoa(28000 + (os.Getpid()+i)%1000)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			dump := e.startDump([]*os.File{w}, "--lazy-pages", "--page-server", "127.0.0.1:"+port,
				"--status-fd", "3", "--image-path", images, id)
			w.Close()
			var criu []int
			defer func() {
				for _, pid := range criu {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}()
			var b [1]byte
			r.SetReadDeadline(time.Now().Add(settle))
			if n, err := r.Read(b[:]); n != 1 {
				t.Fatalf("status fd: read %d bytes (%v); checkpoint: %s", n, err, dump.stderr.String())
			}
			criu = childrenOf(dump.cmd.Process.Pid)
			if len(criu) == 0 {
				t.Fatal("the lazy checkpoint serves pages without a CRIU child")
			}
			dump.cmd.Process.Signal(sig)
			if err := dump.wait(t); err == nil {
				t.Fatalf("the checkpoint stopped by %s exited 0", name)
			}
			e.checkOneLineFailure(result{stderr: dump.stderr.String(), code: 1}, `checkpoint: .*interrupted by `+name, nil)
			for _, pid := range criu {
				if alive(pid) {
					t.Errorf("CRIU %d of the interrupted checkpoint is left", pid)
				}
			}
			if _, err := os.Lstat(filepath.Join(e.root, id, "dumping")); err == nil {
				t.Error("the interrupted checkpoint left the container marked as being dumped")
			}
			if st := e.state(id); st["status"] != "running" {
				t.Fatalf("the container is %v after an interrupted checkpoint", st["status"])
			}
			releaseAndCompare(t, root)
			e.waitStatus(id, "stopped")
			e.mustLkc("delete", id)
		})
	}
}

// childrenOf returns the pids of pid's children.
func childrenOf(pid int) []int {
	var kids []int
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, f := range tasks {
		data, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(s); err == nil {
				kids = append(kids, n)
			}
		}
	}
	return kids
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(data), ") ")
	return !strings.HasPrefix(rest, "Z")
}
