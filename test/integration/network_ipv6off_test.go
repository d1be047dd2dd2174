package integration

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// publishWithSysctls asks for network c, the ports and the sysctls kv,
// with a writable /tmp for httpd.
func publishWithSysctls(c *cniNet, ports string, kv map[string]string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		c.annotate("org.lkc.ports", ports)(s)
		s.Linux.Sysctl = kv
		writableTmp(s)
	}
}

// TestNetworkPortsIPv6Disabled: the config's sysctls, written after ADD,
// take the IPv6 address ADD gave eth0 when they disable IPv6 there (all's
// or eth0's disable_ipv6). A port on an IPv6 host address would then lead
// nowhere: create refuses it in one line naming the port and the sysctl,
// before anything is made. A port on every address is published on IPv4
// alone and answers there, and `state --check` passes, even where eth0's
// IPv6 is enabled again after all's (its address is gone all the same).
// default's sets only interfaces made later: eth0 keeps its address, and
// its ports are published as asked.
func TestNetworkPortsIPv6Disabled(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	cache := privateCNICache(t)
	port := freeHostPort(t)
	for _, key := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.eth0.disable_ipv6"} {
		for _, host := range []string{"::", c.subnet6[:len(c.subnet6)-3] + "1"} {
			id := e.id()
			want := fmt.Sprintf(`^lkc: run: annotation org\.lkc\.ports: port \[%s\]:%d:80/tcp needs IPv6, and the config's sysctl %s=1 disables it on eth0$`, regexp.QuoteMeta(host), port, regexp.QuoteMeta(key))
			e.failLkc(want, "run", "-d", "--bundle", e.bundle(httpdArgs("refused"), publishWithSysctls(c, fmt.Sprintf("[%s]:%d:80", host, port), map[string]string{key: "1"})), id)
			e.assertIDGone(id)
			c.assertReleased("")
			if r := rulesNaming(fmt.Sprintf("--dport %d ", port)); len(r) > 0 {
				t.Errorf("port mapping rules left: %v", r)
			}
			if notes := portNotesOf(t, e.root); len(notes) > 0 {
				t.Errorf("notes of published ports left: %v", notes)
			}
			if intents, _ := filepath.Glob(filepath.Join(cache, "intents", "*")); len(intents) > 0 {
				t.Errorf("intents of an ADD left: %v", intents)
			}
		}
	}

	id := e.id()
	off := map[string]string{"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.eth0.disable_ipv6": "0"}
	e.mustLkc("run", "-d", "--bundle", e.bundle(httpdArgs("v4"), publishWithSysctls(c, fmt.Sprintf("%d:80", port), off)), id)
	if out := e.mustLkc("exec", id, "ip", "-o", "-6", "addr", "show", "eth0", "scope", "global"); strings.TrimSpace(out) != "" {
		t.Errorf("eth0 keeps its IPv6 address after net.ipv6.conf.all.disable_ipv6=1: %q", out)
	}
	if got := httpGet(t, fmt.Sprintf("http://%s:%d/", hostAddr(), port)); got != "hello from v4" {
		t.Errorf("the port published on IPv4 answers %q", got)
	}
	if r := rulesIn("ip6tables-save", fmt.Sprintf("--dport %d ", port)); len(r) > 0 {
		t.Errorf("the port is published on IPv6, where it leads nowhere: %v", r)
	}
	if r := e.lkc("state", "--check", id); r.code != 0 {
		e.checkOneLineFailure(r, `^lkc: state: network `+c.name+`: `+portmapFault, nil)
	}
	ip := e.addr(id)
	e.mustLkc("delete", "-f", id)
	c.assertReleased(ip)

	id = e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "60"}, publishWithSysctls(c, fmt.Sprintf("[::]:%d:80", port), map[string]string{"net.ipv6.conf.default.disable_ipv6": "1"})), id)
	if out := e.mustLkc("exec", id, "ip", "-o", "-6", "addr", "show", "eth0", "scope", "global"); !strings.Contains(out, c.subnet6[:len(c.subnet6)-4]) {
		t.Errorf("eth0 lost its IPv6 address to net.ipv6.conf.default.disable_ipv6=1: %q", out)
	}
	if r := rulesIn("ip6tables-save", fmt.Sprintf("--dport %d ", port)); len(r) == 0 {
		t.Errorf("the port on [::] is not published in ip6tables")
	}
}
