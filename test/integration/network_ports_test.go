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

// TestNetworkPortFamilyMissing: on a network that gives the container
// only an IPv4 address, a port published on an IPv6 host address gets no
// rule from portmap (it maps only where the families match); create must
// say so rather than leave the port silently unpublished, and leave
// nothing.
func TestNetworkPortFamilyMissing(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[
 {"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":true,
  "ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":%q}]]}},
 {"type":"portmap","capabilities":{"portMappings":true}}]}`, c.name, c.bridge, c.ipamDir, c.subnet)
	if err := os.WriteFile(filepath.Join(c.dir, c.name+".conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freeHostPort(t)
	id := e.id()
	b := e.bundle([]string{"sleep", "60"}, c.annotate("org.lkc.ports", fmt.Sprintf("[::]:%d:80", port)))
	e.failLkc(`^lkc: run: network `+c.name+`: annotation org.lkc.ports: host address :: is IPv6, and the network gave the container no IPv6 address$`,
		"run", "-d", "--bundle", b, id)
	e.assertIDGone(id)
	c.assertReleased("")
	if r := rulesNaming(fmt.Sprintf("--dports %d ", port)); len(r) > 0 {
		t.Errorf("port mapping rules left: %v", r)
	}
	// The IPv4 form of the same request works.
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "60"}, c.annotate("org.lkc.ports", fmt.Sprintf("0.0.0.0:%d:80", port))), e.id())
}
