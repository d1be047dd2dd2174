package integration

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// networkedEcho runs an echo server on port 5000 in a container on c and
// returns its id, bundle and address, with a connection from the host to
// it that has carried one line.
func networkedEcho(e *env, c *cniNet) (id, bundle, addr string, conn *bufio.ReadWriter) {
	e.t.Helper()
	bundle = e.bundle([]string{"nc", "-l", "-p", "5000", "-e", "cat"}, c.annotate())
	id = e.id()
	e.mustLkc("run", "-d", "--bundle", bundle, id)
	addr = e.addr(id)
	nc := dialRetry(e.t, addr+":5000")
	conn = bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))
	echo(e.t, nc, conn.Reader, "before-checkpoint")
	return id, bundle, addr, conn
}

// TestNetworkCheckpointKeepsAddress checkpoints a container on a CNI
// network with a connection from the host open, restores it and checks
// that it has the same address and the connection carries on; the
// checkpoint gave the lease back (the container was gone) and the
// restore took the same one.
func TestNetworkCheckpointKeepsAddress(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	c := newCNINet(e, "")
	id, bundle, addr, conn := networkedEcho(e, c)

	images := filepath.Join(t.TempDir(), "images")
	e.mustLkc("checkpoint", "--tcp-established", "--image-path", images, id)
	c.assertReleased(addr)
	start := time.Now()
	e.mustLkc("restore", "-d", "--tcp-established", "--bundle", bundle, "--image-path", images, id)
	t.Logf("restore with a network: %v", time.Since(start))
	if got := e.addr(id); got != addr {
		t.Fatalf("restored with address %s, had %s", got, addr)
	}
	if l := c.leases(); len(l) != 2 || !strings.Contains(strings.Join(l, " "), addr) {
		t.Fatalf("leases after restore: %v, want %s and its IPv6 one", l, addr)
	}
	if _, err := conn.WriteString("after-restore\n"); err == nil {
		err = conn.Flush()
	} else {
		t.Fatal(err)
	}
	got, err := readLineWithin(conn.Reader, 10*time.Second)
	if err != nil || got != "after-restore" {
		t.Fatalf("echo after restore: %q, %v", got, err)
	}
	e.mustLkc("delete", "-f", id)
	c.assertReleased(addr)
}

// readLineWithin reads one line, giving up after d.
func readLineWithin(r *bufio.Reader, d time.Duration) (string, error) {
	type line struct {
		s   string
		err error
	}
	ch := make(chan line, 1)
	go func() {
		s, err := r.ReadString('\n')
		ch <- line{strings.TrimSpace(s), err}
	}()
	select {
	case l := <-ch:
		return l.s, l.err
	case <-time.After(d):
		return "", os.ErrDeadlineExceeded
	}
}

// TestNetworkRestoreFailureLeavesNothing restores a networked checkpoint
// whose images CRIU cannot read, so that the restore fails after ADD gave
// the container its address back: it fails in one line and leaves no
// lease, veth, iptables rule or state.
func TestNetworkRestoreFailureLeavesNothing(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	c := newCNINet(e, "")
	bundle := e.bundle([]string{"sleep", "100"}, c.annotate())
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", bundle, id)
	addr := e.addr(id)
	images := filepath.Join(t.TempDir(), "images")
	e.mustLkc("checkpoint", "--image-path", images, id)

	// Break the images so that CRIU fails after the ADD.
	if err := os.WriteFile(filepath.Join(images, "pstree.img"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.lkc("restore", "-d", "--bundle", bundle, "--image-path", images, id)
	e.checkOneLineFailure(r, "restore", nil)
	e.assertIDGone(id)
	c.assertReleased(addr)
	if _, err := os.Stat(filepath.Join(e.root, id)); !os.IsNotExist(err) {
		t.Fatalf("state directory left: %v", err)
	}
}
