package integration

import (
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// netSysctls are net.* sysctls a container's config may set, with the
// file each shows in the container's /proc/sys/net.
var netSysctls = map[string]string{
	"net.ipv4.conf.eth0.rp_filter": "2", "net.ipv6.conf.all.disable_ipv6": "1", "net.ipv4.ip_unprivileged_port_start": "80",
}
var netSysctlFiles = map[string]string{"ipv4/conf/eth0/rp_filter": "2", "ipv6/conf/eth0/disable_ipv6": "1", "ipv4/ip_unprivileged_port_start": "80"}

// withNetSysctls asks for network c and the sysctls kv.
func withNetSysctls(c *cniNet, kv map[string]string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		c.annotate()(s)
		s.Linux.Sysctl = kv
	}
}

// assertNetSysctls checks that container id has netSysctls in force,
// eth0's IPv6 address gone with it.
func assertNetSysctls(e *env, id string) {
	e.t.Helper()
	for key, want := range netSysctlFiles {
		if got := strings.TrimSpace(e.mustLkc("exec", id, "cat", "/proc/sys/net/"+key)); got != want {
			e.t.Errorf("%s in the container: %q, want %q", key, got, want)
		}
	}
	if out := e.mustLkc("exec", id, "ip", "-o", "-6", "addr", "show", "eth0"); strings.TrimSpace(out) != "" {
		e.t.Errorf("eth0 keeps IPv6 addresses with net.ipv6.conf.all.disable_ipv6=1: %q", out)
	}
}

// TestNetworkSysctls: under runc, Podman's CNI makes the interfaces before
// the runtime writes the config's sysctls, so a key of eth0 exists and
// net.ipv6.conf.all.disable_ipv6 takes the IPv6 address ADD gave; lkc's
// must behave the same. A key of an interface no network made fails
// create in one line and leaves nothing.
func TestNetworkSysctls(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	bad := e.id()
	e.failLkc(`^lkc: run: sysctl net.ipv4.conf.eth9.rp_filter=2: open /proc/sys/net/ipv4/conf/eth9/rp_filter: no such file or directory$`,
		"run", "-d", "--bundle", e.bundle([]string{"sleep", "60"}, withNetSysctls(c, map[string]string{"net.ipv4.conf.eth9.rp_filter": "2"})), bad)
	e.assertIDGone(bad)
	c.assertReleased("")

	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "60"}, withNetSysctls(c, netSysctls)), id)
	assertNetSysctls(e, id)
	e.mustLkc("delete", "-f", id)
	c.assertReleased("")
}

// TestNetworkRestoreKeepsSysctls: a restore makes the container a new
// network namespace and runs ADD into it, so the config's net.* sysctls,
// which create wrote after its ADD, must be written after the restore's
// too; CRIU restores nothing of a namespace external to it.
func TestNetworkRestoreKeepsSysctls(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	c := newCNINet(e, "")
	id := e.id()
	bundle := e.bundle([]string{"sleep", "100"}, withNetSysctls(c, netSysctls))
	e.mustLkc("run", "-d", "--bundle", bundle, id)
	addr := e.addr(id)
	images := filepath.Join(t.TempDir(), "images")
	e.mustLkc("checkpoint", "--image-path", images, id)
	e.mustLkc("restore", "-d", "--bundle", bundle, "--image-path", images, id)
	if got := e.addr(id); got != addr {
		t.Fatalf("restored with address %s, had %s", got, addr)
	}
	assertNetSysctls(e, id)
	e.mustLkc("delete", "-f", id)
	c.assertReleased(addr)
}
