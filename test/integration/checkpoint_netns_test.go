package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// inNetns runs a host tool in the network namespace of container id.
func (e *env) inNetns(id string, args ...string) string {
	e.t.Helper()
	pid := fmt.Sprint(e.state(id)["pid"])
	out, err := exec.Command("nsenter", append([]string{"-t", pid, "-n"}, args...)...).CombinedOutput()
	if err != nil {
		e.t.Fatalf("%v in the container's network namespace: %v: %s", args, err, out)
	}
	return string(out)
}

// netnsImages says which of lkc's (netns.json) and CRIU's (netdev, ifaddr)
// records of the network namespace a checkpoint holds.
func netnsImages(t *testing.T, images string) (lkc, criu bool) {
	t.Helper()
	_, err := os.Stat(filepath.Join(images, "netns.json"))
	lkc = err == nil
	dumped, _ := filepath.Glob(filepath.Join(images, "ifaddr-*.img"))
	return lkc, len(dumped) > 0
}

// sortedLines makes output whose line order the kernel does not promise
// comparable.
func sortedLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// The network namespace lkc carries in place of CRIU (internal/netns)
// comes back with its sysctls, addresses and routes; one with firewall
// rules is left to CRIU, which keeps them.
func TestCheckpointNetnsCarried(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, root := e.ckptCounter(func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{
			"net.ipv4.conf.all.forwarding":    "1",
			"net.ipv6.conf.default.hop_limit": "33",
			"net.ipv4.conf.lo.rp_filter":      "2",
		}
	})
	bundle := bundleOf(e, id)
	for _, args := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "addr", "add", "10.123.0.1/32", "dev", "lo"},
		{"ip", "-6", "addr", "add", "fd00::7/128", "dev", "lo"},
		{"ip", "route", "add", "10.124.0.0/16", "dev", "lo", "src", "10.123.0.1"},
		{"ip", "route", "add", "10.125.0.0/16", "via", "10.124.0.9", "dev", "lo", "onlink"},
		{"ip", "route", "add", "table", "7", "10.126.0.0/16", "dev", "lo"},
	} {
		e.inNetns(id, args...)
	}
	sysctls := "cat /proc/sys/net/ipv4/conf/all/forwarding /proc/sys/net/ipv6/conf/default/hop_limit /proc/sys/net/ipv4/conf/lo/rp_filter /proc/sys/net/ipv4/conf/all/accept_redirects"
	look := func() string {
		return e.mustLkc("exec", id, "sh", "-c", sysctls) +
			sortedLines(e.inNetns(id, "ip", "-d", "addr")) +
			sortedLines(e.inNetns(id, "ip", "route", "show", "table", "all")) +
			sortedLines(e.inNetns(id, "ip", "-6", "route", "show", "table", "all"))
	}
	before := look()
	images := filepath.Join(t.TempDir(), "images")
	saved := e.checkpointStops(id, root, images)
	if lkc, criu := netnsImages(t, images); !lkc || criu {
		t.Fatalf("a namespace lkc can carry: lkc's record %v, CRIU's %v", lkc, criu)
	}
	e.restoreDetached(id, bundle, root, images, saved)
	if after := look(); after != before {
		t.Fatalf("the network namespace before the checkpoint:\n%s\nafter the restore:\n%s", before, after)
	}

	e.inNetns(id, "iptables", "-A", "INPUT", "-s", "10.9.9.9", "-j", "DROP")
	images2 := filepath.Join(t.TempDir(), "images2")
	saved = e.checkpointStops(id, root, images2)
	if lkc, criu := netnsImages(t, images2); lkc || !criu {
		t.Fatalf("a namespace with a firewall rule: lkc's record %v, CRIU's %v", lkc, criu)
	}
	e.restoreDetached(id, bundle, root, images2, saved)
	if rules := e.inNetns(id, "iptables", "-S", "INPUT"); !strings.Contains(rules, "10.9.9.9") {
		t.Fatalf("the rule is gone after the restore:\n%s", rules)
	}
	e.mustLkc("delete", "-f", id)
}

// A carried namespace that cannot be rebuilt (a veth that names no peer
// on this host) fails the restore in one line and leaves nothing behind:
// the same images then restore under the same id.
func TestCheckpointNetnsRebuildFails(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, root := e.ckptCounter(nil)
	bundle := bundleOf(e, id)
	e.inNetns(id, "ip", "link", "set", "lo", "up")
	images := filepath.Join(t.TempDir(), "images")
	saved := e.checkpointStops(id, root, images)
	path := filepath.Join(images, "netns.json")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("a namespace lkc can carry has no netns.json: %v", err)
	}
	var snap map[string]any
	if err := json.Unmarshal(good, &snap); err != nil {
		t.Fatal(err)
	}
	snap["links"] = append(snap["links"].([]any), map[string]any{"index": 99, "name": "eth9", "veth": true, "mtu": 1500})
	bad, _ := json.Marshal(snap)
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.lkc("restore", "-d", "--bundle", bundle, "--image-path", images, id)
	if r.code == 0 || !strings.Contains(r.stderr, "veth eth9") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
		t.Fatalf("restore with a veth that has no peer: want one line naming eth9, got %v", r)
	}
	if r := e.lkc("state", id); r.code == 0 {
		t.Fatalf("the failed restore left container %s: %v", id, r)
	}
	for _, dir := range cgroupDirs(id) {
		t.Errorf("the failed restore left cgroup %s", dir)
	}
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	e.restoreDetached(id, bundle, root, images, saved)
	e.mustLkc("delete", "-f", id)
}
