package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// logPortmap puts a portmap in front of Debian's (LKC_CNI_PATH) that
// notes each command it is run for, then runs the real one; it returns
// what the log holds so far.
func logPortmap(t *testing.T) func() string {
	t.Helper()
	log := filepath.Join(t.TempDir(), "portmap.log")
	installPlugin(t, "portmap", "#!/bin/sh\necho \"$CNI_COMMAND\" >> "+log+"\nexec /usr/lib/cni/portmap\n")
	return func() string {
		b, _ := os.ReadFile(log)
		return strings.Join(strings.Fields(string(b)), " ")
	}
}

// recordHasPortmap says whether the network record of id (the lists its
// ADD ran, which CHECK and DEL run) names the portmap plugin.
func (e *env) recordHasPortmap(id string) bool {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.root, id, "network.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	var rec struct {
		Attachments []struct {
			Config []byte `json:"config"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(b, &rec); err != nil || len(rec.Attachments) == 0 {
		e.t.Fatalf("network record of %s: %v: %s", id, err, b)
	}
	for _, a := range rec.Attachments {
		var list struct {
			Plugins []struct {
				Type string `json:"type"`
			} `json:"plugins"`
		}
		if err := json.Unmarshal(a.Config, &list); err != nil || len(list.Plugins) == 0 {
			e.t.Fatalf("network record of %s: configuration %v: %s", id, err, a.Config)
		}
		for _, p := range list.Plugins {
			if p.Type == "portmap" {
				return true
			}
		}
	}
	return false
}

// TestNetworkPortmapOnlyWithPorts: on a network with portmap, a container
// that publishes no port never runs it (ADD, CHECK, DEL), its record
// leaves it out, and the rest works without it: `state --check`, a rate
// given later by `update --net-rate`, and delete releasing everything. A
// container that publishes a port runs it at ADD and DEL.
func TestNetworkPortmapOnlyWithPorts(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	ran := logPortmap(t)

	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "100"}, c.annotate()), id)
	if e.recordHasPortmap(id) {
		t.Errorf("the record of a container without ports names portmap")
	}
	e.mustLkc("state", "--check", id)
	e.mustLkc("update", "--net-rate", "ingress=10mbit", id)
	if q := c.hostQdiscs(t); !strings.Contains(q, "rate 10Mbit") {
		t.Errorf("no 10 Mbit/s limit after update --net-rate: %s", q)
	}
	e.mustLkc("state", "--check", id)
	ip := e.addr(id)
	e.mustLkc("delete", "-f", id)
	c.assertReleased(ip)
	if got := ran(); got != "" {
		t.Errorf("portmap ran for a container without ports: %s", got)
	}

	pub := e.id()
	port := freeHostPort(t)
	dport := fmt.Sprintf("--dport %d ", port)
	b := e.bundle([]string{"sleep", "100"}, c.annotate("org.lkc.ports", fmt.Sprintf("%d:80", port)))
	e.mustLkc("run", "-d", "--bundle", b, pub)
	if !e.recordHasPortmap(pub) {
		t.Errorf("the record of a container with a port has no portmap")
	}
	if r := rulesNaming(dport); len(r) == 0 {
		t.Errorf("no port mapping rule for a published port")
	}
	ip = e.addr(pub)
	e.mustLkc("delete", "-f", pub)
	c.assertReleased(ip)
	if r := rulesNaming(dport); len(r) > 0 {
		t.Errorf("port mapping rules left: %v", r)
	}
	if got := ran(); got != "ADD DEL" {
		t.Errorf("portmap ran for %q, want ADD DEL", got)
	}
}

// TestNetworkPortmapLeftOutAcrossRestore: a restore of a container without
// ports attaches it as create does, without portmap, and its delete
// releases everything.
func TestNetworkPortmapLeftOutAcrossRestore(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	c := newCNINet(e, "")
	ran := logPortmap(t)
	id, bundle, addr, _ := networkedEcho(e, c)
	images := filepath.Join(t.TempDir(), "images")
	e.mustLkc("checkpoint", "--tcp-established", "--image-path", images, id)
	c.assertReleased(addr)
	e.mustLkc("restore", "-d", "--tcp-established", "--bundle", bundle, "--image-path", images, id)
	if e.recordHasPortmap(id) {
		t.Errorf("the record of a restored container without ports names portmap")
	}
	if got := e.addr(id); got != addr {
		t.Errorf("restored with address %s, had %s", got, addr)
	}
	e.mustLkc("delete", "-f", id)
	c.assertReleased(addr)
	if got := ran(); got != "" {
		t.Errorf("portmap ran for a container without ports: %s", got)
	}
}
