package integration

import (
	"bufio"
	"fmt"
	"path/filepath"
	"testing"
)

// TestNetworkCheckpointPublishedPort: a client on the host is connected
// to a container's echo server through a port published by portmap (the
// host's address and port, DNAT to the container) across `checkpoint
// --tcp-established` and `restore --tcp-established`: the checkpoint
// removes the mapping with the rest of the network, the restore puts it
// back, and the connection carries on. The host's conntrack entry, which
// holds the translation, outlives the pause. (Across `lkc migrate` such a
// connection cannot follow; docs/network.md says why.)
func TestNetworkCheckpointPublishedPort(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	c := newCNINet(e, "")
	port := freeHostPort(t)
	bundle := e.bundle([]string{"nc", "-l", "-p", "5000", "-e", "cat"}, c.annotate("org.lkc.ports", fmt.Sprintf("%d:5000/tcp", port)))
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", bundle, id)
	addr := e.addr(id)
	published := fmt.Sprintf("%s:%d", hostAddr(), port)
	conn := dialRetry(t, published)
	defer conn.Close()
	r := bufio.NewReader(conn)
	echo(t, conn, r, "before-checkpoint")

	images := filepath.Join(t.TempDir(), "images")
	e.mustLkc("checkpoint", "--tcp-established", "--image-path", images, id)
	c.assertReleased(addr)
	if rules := rulesNaming(fmt.Sprintf("--dport %d ", port)); len(rules) > 0 {
		t.Errorf("port mapping rules left after the checkpoint: %v", rules)
	}
	e.mustLkc("restore", "-d", "--tcp-established", "--bundle", bundle, "--image-path", images, id)
	if got := e.addr(id); got != addr {
		t.Fatalf("restored with address %s, had %s", got, addr)
	}
	echo(t, conn, r, "after-restore")
	if rules := rulesNaming(fmt.Sprintf("--dport %d ", port)); len(rules) == 0 {
		t.Errorf("no port mapping rule for %d after the restore", port)
	}
	conn.Close()
	e.mustLkc("delete", "-f", id)
	c.assertReleased(addr)
	if rules := rulesNaming(fmt.Sprintf("--dport %d ", port)); len(rules) > 0 {
		t.Errorf("port mapping rules left after delete: %v", rules)
	}
}
