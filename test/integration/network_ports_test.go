package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestNetworkPortInUse: portmap adds its DNAT rules without looking, so a
// second container publishing a host port the first publishes would be
// created and never get a connection, and a container publishing a port
// a process of the host listens on would take that process's
// connections from outside. Both must fail create in one line, leaving
// nothing; the port is free again once its container is deleted.
func TestNetworkPortInUse(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	port := freeHostPort(t)
	publish := func(spec string) func(*specs.Spec) {
		return func(s *specs.Spec) {
			c.annotate("org.lkc.ports", spec)(s)
			writableTmp(s)
		}
	}
	first := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle(httpdArgs("first"), publish(fmt.Sprintf("%d:80", port))), first)
	ports, leases := c.ports(), c.leases()
	for _, spec := range []string{fmt.Sprintf("%d:8080", port), fmt.Sprintf("0.0.0.0:%d:80/tcp", port)} {
		second := e.id()
		e.failLkc(fmt.Sprintf(`annotation org.lkc.ports: host port %d/tcp is published by another container \(%s\)`, port, filepath.Join(e.root, first)),
			"run", "-d", "--bundle", e.bundle(httpdArgs("second"), publish(spec)), second)
		e.assertIDGone(second)
		if c.ports() != ports || len(c.leases()) != len(leases) {
			t.Errorf("the refused container left a veth or a lease: %q %v", c.ports(), c.leases())
		}
	}
	if got := httpGet(t, fmt.Sprintf("http://%s:%d/", hostAddr(), port)); got != "hello from first" {
		t.Errorf("the published port answers %q", got)
	}
	// Another protocol, or another port, is no conflict.
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "60"}, publish(fmt.Sprintf("%d:80/udp", port))), e.id())
	e.mustLkc("delete", "-f", first)
	again := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle(httpdArgs("again"), publish(fmt.Sprintf("%d:80", port))), again)
	e.mustLkc("delete", "-f", again)

	l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	host := e.id()
	e.failLkc(fmt.Sprintf(`annotation org.lkc.ports: host port %d/tcp is in use on the host \(bind 0.0.0.0:%d: address already in use\)`, port, port),
		"run", "-d", "--bundle", e.bundle(httpdArgs("host"), publish(fmt.Sprintf("%d:80", port))), host)
	e.assertIDGone(host)
	for _, id := range e.ids {
		e.lkc("delete", "-f", id)
	}
	if notes := portNotesOf(t, e.root); len(notes) > 0 {
		t.Errorf("notes of published ports left: %v", notes)
	}
}

// portNotesOf lists lkc's notes of published host ports that name a
// container under root.
func portNotesOf(t *testing.T, root string) []string {
	var out []string
	dirs, _ := filepath.Glob("/run/lkc-ports/*")
	for _, d := range dirs {
		entries, _ := os.ReadDir(d)
		for _, ent := range entries {
			b, _ := os.ReadFile(filepath.Join(d, ent.Name()))
			if strings.HasPrefix(string(b), root+"/") {
				out = append(out, ent.Name())
			}
		}
	}
	return out
}
