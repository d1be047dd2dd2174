package integration

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestNetworkSysctls: under runc, Podman's CNI makes the interfaces before
// the runtime writes the config's sysctls, so a key of eth0 exists and
// net.ipv6.conf.all.disable_ipv6 takes the IPv6 address ADD gave; lkc's
// must behave the same. A key of an interface no network made fails
// create in one line and leaves nothing.
func TestNetworkSysctls(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	withSysctls := func(kv map[string]string) func(*specs.Spec) {
		return func(s *specs.Spec) {
			c.annotate()(s)
			s.Linux.Sysctl = kv
		}
	}
	bad := e.id()
	e.failLkc(`^lkc: run: sysctl net.ipv4.conf.eth9.rp_filter=2: open /proc/sys/net/ipv4/conf/eth9/rp_filter: no such file or directory$`,
		"run", "-d", "--bundle", e.bundle([]string{"sleep", "60"}, withSysctls(map[string]string{"net.ipv4.conf.eth9.rp_filter": "2"})), bad)
	e.assertIDGone(bad)
	c.assertReleased("")

	id := e.id()
	b := e.bundle([]string{"sleep", "60"}, withSysctls(map[string]string{
		"net.ipv4.conf.eth0.rp_filter": "2", "net.ipv6.conf.all.disable_ipv6": "1", "net.ipv4.ip_unprivileged_port_start": "80",
	}))
	e.mustLkc("run", "-d", "--bundle", b, id)
	for key, want := range map[string]string{"ipv4/conf/eth0/rp_filter": "2", "ipv6/conf/eth0/disable_ipv6": "1", "ipv4/ip_unprivileged_port_start": "80"} {
		if got := strings.TrimSpace(e.mustLkc("exec", id, "cat", "/proc/sys/net/"+key)); got != want {
			t.Errorf("%s in the container: %q, want %q", key, got, want)
		}
	}
	if out := e.mustLkc("exec", id, "ip", "-o", "-6", "addr", "show", "eth0"); strings.TrimSpace(out) != "" {
		t.Errorf("eth0 keeps IPv6 addresses with net.ipv6.conf.all.disable_ipv6=1: %q", out)
	}
	e.mustLkc("delete", "-f", id)
	c.assertReleased("")
}
