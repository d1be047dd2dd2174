package integration

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// closingPageServer listens on a loopback port and closes every connection
// it accepts at once: a page server that exits as the dump or the
// restore's lazy-pages daemon connects. It returns the address.
func closingPageServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().String()
}

// lazyPagesDaemons lists the criu lazy-pages processes working on images.
func lazyPagesDaemons(images string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if s := string(cmd); strings.Contains(s, "lazy-pages") && strings.Contains(s, images) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestPageServerFailures: a page server nothing listens at, or one that
// closes the connection, fails a checkpoint (sending its pages there) and
// a lazy restore (fetching them from there) in one line that names the
// address and what was wrong, not with the error CRIU logs next, and
// leaves nothing behind: the container runs on after the checkpoint, and
// the restore leaves no container, mount or lazy-pages daemon.
func TestPageServerFailures(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, root := e.ckptCounter(nil)
	bundle := bundleOf(e, id)
	closing := closingPageServer(t)
	for _, c := range []struct{ addr, want string }{
		{"127.0.0.1:1", `page server 127\.0\.0\.1:1: connection refused: nothing listens there$`},
		{closing, `the page server at ` + closing + ` closed the connection`},
	} {
		images := filepath.Join(t.TempDir(), "images")
		msg := e.failLkc(`^lkc: checkpoint: checkpointing container `+id+`: .*`+c.want,
			"checkpoint", "--page-server", c.addr, "--image-path", images, id)
		t.Logf("checkpoint to %s: %s", c.addr, msg)
		if _, err := os.Stat(images); c.addr == "127.0.0.1:1" && !os.IsNotExist(err) {
			t.Errorf("the refused checkpoint made its image directory: %v", err)
		}
		if st := e.state(id); st["status"] != "running" {
			t.Fatalf("container is %v after a checkpoint to page server %s failed", st["status"], c.addr)
		}
		waitCount(t, root, readCount(t, root)+3)
	}

	images := filepath.Join(t.TempDir(), "images")
	saved := e.checkpointStops(id, root, images)
	for _, c := range []struct{ addr, want string }{
		{"127.0.0.1:1", `page server 127\.0\.0\.1:1: connection refused: nothing listens there$`},
		{closing, `the page server at ` + closing + ` closed the connection`},
	} {
		id2 := e.id()
		msg := e.failLkc(`^lkc: restore: restoring container `+id2+`: .*`+c.want,
			"restore", "-d", "--lazy-pages", "--page-server", c.addr, "--bundle", bundle, "--image-path", images, id2)
		t.Logf("lazy restore from %s: %s", c.addr, msg)
		e.assertIDGone(id2)
		if m := mountsUnder(t, e.root); len(m) > 0 {
			t.Errorf("the failed lazy restore left mounts %v", m)
		}
		if pids := lazyPagesDaemons(images); len(pids) > 0 {
			t.Errorf("the failed lazy restore left criu lazy-pages %v", pids)
		}
	}
	// The images are intact: a plain restore brings the counter back.
	e.restoreDetached(id, bundle, root, images, saved)
	e.mustLkc("delete", "-f", id)
}

// TestCheckpointToPageServer: a checkpoint sends its pages to a `criu
// page-server` on the connection lkc made, and the images the page server
// wrote, with the rest the dump wrote, restore the counter.
func TestCheckpointToPageServer(t *testing.T) {
	criu := requireCriu(t)
	e := newEnv(t)
	id, root := e.ckptCounter(nil)
	bundle := bundleOf(e, id)
	images := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close() // the page server listens there itself
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ps := exec.Command(criu, "page-server", "--images-dir", images, "--address", "127.0.0.1", "--port", port,
		"--status-fd", "3", "-o", "page-server.log")
	ps.ExtraFiles = []*os.File{w}
	if err := ps.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	done := make(chan error, 1)
	go func() { done <- ps.Wait() }()
	defer func() {
		ps.Process.Kill()
		<-done
	}()
	r.SetReadDeadline(time.Now().Add(settle))
	if n, _ := r.Read(make([]byte, 1)); n != 1 {
		t.Fatalf("criu page-server never became ready: %v", <-done)
	}
	saved := e.checkpointStops(id, root, images, "--page-server", "127.0.0.1:"+port)
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("criu page-server: %v", err)
		}
	case <-time.After(settle):
		t.Fatal("criu page-server went on after the dump")
	}
	if dirBytes(t, images, "pages-") == 0 {
		t.Fatal("the page server wrote no pages")
	}
	e.restoreDetached(id, bundle, root, images, saved)
	e.mustLkc("delete", "-f", id)
}
