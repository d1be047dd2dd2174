package network

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

const bridgeOnly = `{"cniVersion":"1.0.0","name":"plain","plugins":[{"type":"bridge","bridge":"x0","ipam":{"type":"host-local","subnet":"10.99.0.0/24"}}]}`

const withPortmap = `{"cniVersion":"1.0.0","name":"full","plugins":[{"type":"bridge","bridge":"x1","ipam":{"type":"host-local","subnet":"10.99.1.0/24"}},
 {"type":"portmap","capabilities":{"portMappings":true}},{"type":"bandwidth","capabilities":{"bandwidth":true}}]}`

func confDir(t *testing.T) string {
	dir := t.TempDir()
	for name, text := range map[string]string{"10-plain.conflist": bridgeOnly, "20-full.conflist": withPortmap} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoad(t *testing.T) {
	dir := confDir(t)
	p, err := Load(dir, &Request{Networks: []string{"plain", "full"}, Ports: []Port{{HostPort: 1, ContainerPort: 2, Protocol: "tcp"}}, Rate: Rate{Egress: 1e6}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.attachments) != 2 || p.attachments[0].IfName != "eth0" || p.attachments[1].IfName != "eth1" {
		t.Fatalf("attachments %+v", p.attachments)
	}
	if len(p.attachments[0].Caps) != 0 {
		t.Errorf("plain got capability args %v; it has no plugin for them", p.attachments[0].Caps)
	}
	if p.attachments[1].Caps["portMappings"] == nil || p.attachments[1].Caps["bandwidth"] == nil {
		t.Errorf("full got capability args %v, want portMappings and bandwidth", p.attachments[1].Caps)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := confDir(t)
	for _, c := range []struct {
		req  Request
		want string
	}{
		{Request{Networks: []string{"missing"}}, "network missing: no configuration of that name in " + dir},
		{Request{Networks: []string{"plain"}, Ports: []Port{{HostPort: 1, ContainerPort: 2}}}, "org.lkc.ports: no network of [plain] has a plugin with the portMappings capability"},
		{Request{Networks: []string{"plain"}, Rate: Rate{Ingress: 1e6}}, "org.lkc.net-rate: no network of [plain] has a plugin with the bandwidth capability"},
	} {
		_, err := Load(dir, &c.req)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Load(%+v) = %v, want one line with %q", c.req, err, c.want)
		}
	}
	if _, err := Load(filepath.Join(dir, "nonexistent"), &Request{Networks: []string{"plain"}}); err == nil || !strings.Contains(err.Error(), "network plain:") {
		t.Errorf("Load from a missing directory = %v, want an error naming the network", err)
	}
}

// TestLoadBesideBrokenFile: a configuration file that does not parse,
// for another network, does not keep the others from loading (Podman
// skips such a file too); a lookup that finds no network names it.
func TestLoadBesideBrokenFile(t *testing.T) {
	dir := confDir(t)
	if err := os.WriteFile(filepath.Join(dir, "00-broken.conflist"), []byte(`{"cniVersion":"1.0.0","name":`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, &Request{Networks: []string{"full"}}); err != nil {
		t.Errorf("beside a broken file: %v", err)
	}
	_, err := Load(dir, &Request{Networks: []string{"other"}})
	if err == nil || !strings.Contains(err.Error(), "network other: no configuration of that name in "+dir) || !strings.Contains(err.Error(), "00-broken.conflist") {
		t.Errorf("a network not there, beside a broken file: %v", err)
	}
}

// TestLoadLeavesOutPortmap: a network asked for no ports gets its list
// without portmap, as ADD runs it and the record keeps it; the network
// that publishes keeps it, and the other plugins stay in order.
func TestLoadLeavesOutPortmap(t *testing.T) {
	dir := confDir(t)
	types := func(conf []byte) []string {
		list, err := libcni.NetworkConfFromBytes(conf)
		if err != nil {
			t.Fatal(err)
		}
		var ts []string
		for _, p := range list.Plugins {
			ts = append(ts, p.Network.Type)
		}
		return ts
	}
	for _, tc := range []struct {
		name  string
		ports []Port
		want  string
	}{
		{"no ports", nil, "bridge bandwidth"},
		{"ports", []Port{{HostPort: 1, ContainerPort: 2, Protocol: "tcp"}}, "bridge portmap bandwidth"},
	} {
		p, err := Load(dir, &Request{Networks: []string{"full"}, Ports: tc.ports})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(types(p.attachments[0].Config), " "); got != tc.want {
			t.Errorf("%s: plugins %q, want %q", tc.name, got, tc.want)
		}
	}
	p, err := Load(dir, &Request{Networks: []string{"plain"}})
	if err != nil {
		t.Fatal(err)
	}
	if string(p.attachments[0].Config) != bridgeOnly {
		t.Errorf("a list without portmap changed: %s", p.attachments[0].Config)
	}
}
