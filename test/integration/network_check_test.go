package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestNetworkStateCheck: `state --check` runs CNI CHECK of a container's
// networks: it passes on a container as ADD made it (addresses, a rate,
// also once the rate changed) and on one without networks, and fails in one
// line naming the network once the container's address is gone, printing
// no state.
func TestNetworkStateCheck(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	id := e.id()
	// No published port: portmap 1.1.1 (Debian 12) fails CHECK of a
	// container's ports (containernetworking/plugins#819,
	// TestNetworkStateCheckPorts).
	b := e.bundle([]string{"sleep", "60"}, c.annotate("org.lkc.net-rate", "egress=10mbit"))
	e.mustLkc("run", "-d", "--bundle", b, id)
	e.mustLkc("state", "--check", id)
	e.mustLkc("update", "--net-rate", "egress=20mbit,ingress=5mbit", id)
	e.mustLkc("state", "--check", id)

	plain := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "60"}, nil), plain)
	e.mustLkc("state", "--check", plain)

	ip := e.addr(id)
	e.delAddr(id, ip)
	r := e.lkc("state", "--check", id)
	e.checkOneLineFailure(r, `state: network `+c.name+`: .*`+ip, nil)
	if r.stdout != "" {
		t.Errorf("state printed after a failed check: %q", r.stdout)
	}
	e.mustLkc("delete", "-f", id)
	c.assertReleased(ip)
}

// delAddr removes IPv4 address ip (of a /24) from container id's eth0.
func (e *env) delAddr(id, ip string) {
	e.t.Helper()
	del := exec.Command("nsenter", "--net="+filepath.Join(e.root, id, "netns"), "ip", "addr", "del", ip+"/24", "dev", "eth0")
	if out, err := del.CombinedOutput(); err != nil {
		e.t.Fatalf("%v: %v: %s", del, err, out)
	}
}

// TestNetworkStateCheckWithoutRate: `state --check` of a container on a
// network with the bandwidth plugin and no rate in force passes, before a
// rate is given, with one, and after it is taken away. The plugin's CHECK
// crashes without a rate (a nil pointer in containernetworking/plugins), so
// lkc leaves it out of CHECK then: its ADD did nothing to check.
func TestNetworkStateCheckWithoutRate(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "100"}, c.annotate()), id)
	e.mustLkc("state", "--check", id)
	e.mustLkc("update", "--net-rate", "egress=10mbit", id)
	e.mustLkc("state", "--check", id)
	e.mustLkc("update", "--net-rate", "none", id)
	e.mustLkc("state", "--check", id)
	ip := e.addr(id)
	e.mustLkc("delete", "-f", id)
	c.assertReleased(ip)
}

// portmapFault is how `state --check` tells portmap 1.1.1's CHECK fault
// (containernetworking/plugins#819) of a container publishing ports.
const portmapFault = `plugin type="portmap" failed \(check\): a known fault of portmap 1\.1\.1 \(containernetworking/plugins#819: .*\), not the container's$`

// TestNetworkStateCheckPorts: `state --check` of a container publishing
// a port on a dual-stack network passes, or, with portmap 1.1.1
// (Debian 12's), whose CHECK looks for the IPv4 rules in ip6tables, fails
// in one line naming the plugin's fault and its upstream issue. A DNAT
// rule of the container's IPv4 address removed from iptables is a real
// failure, told with the plugin's own words.
func TestNetworkStateCheckPorts(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	id := e.id()
	port := freeHostPort(t)
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "60"}, c.annotate("org.lkc.ports", fmt.Sprintf("%d:80", port))), id)
	if r := e.lkc("state", "--check", id); r.code != 0 {
		e.checkOneLineFailure(r, `^lkc: state: network `+c.name+`: `+portmapFault, nil)
	}
	ip := e.addr(id)
	out, _ := exec.Command("iptables", "-w", "-t", "nat", "-S").Output()
	var rule string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "-A CNI-DN-") && strings.HasSuffix(l, "--to-destination "+ip+":80") {
			rule = l
		}
	}
	if rule == "" {
		t.Fatalf("no DNAT rule to %s:80 in iptables: the check below would prove nothing", ip)
	}
	del := exec.Command("sh", "-c", "iptables -w -t nat -D "+strings.TrimPrefix(rule, "-A "))
	if b, err := del.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v: %s", del, err, b)
	}
	r := e.lkc("state", "--check", id)
	msg := e.checkOneLineFailure(r, `^lkc: state: network `+c.name+`: plugin type="portmap" failed \(check\): could not check ipv4 dnat: .*`+regexp.QuoteMeta(ip+":80"), nil)
	if strings.Contains(msg, "#819") {
		t.Errorf("a rule really missing was taken for the plugin's fault: %q", msg)
	}
	e.mustLkc("delete", "-f", id)
	c.assertReleased(ip)
}

// TestNetworkStateCheckIPv6Disabled: a container whose config sets
// net.ipv6.conf.all.disable_ipv6=1 (in its own namespace) has no IPv6
// address, as under runc, and `state --check` passes: CHECK is given the
// ADD result without the IPv6 addresses. Its IPv4 address removed is
// still a failure.
func TestNetworkStateCheckIPv6Disabled(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "60"}, withNetSysctls(c, map[string]string{"net.ipv6.conf.all.disable_ipv6": "1"})), id)
	if out := e.mustLkc("exec", id, "ip", "-o", "-6", "addr", "show", "eth0"); strings.TrimSpace(out) != "" {
		t.Fatalf("eth0 keeps IPv6 addresses with disable_ipv6=1: %q: the check below would prove nothing", out)
	}
	e.mustLkc("state", "--check", id)
	ip := e.addr(id)
	e.delAddr(id, ip)
	e.checkOneLineFailure(e.lkc("state", "--check", id), `^lkc: state: network `+c.name+`: plugin type="bridge" failed \(check\): .*`+regexp.QuoteMeta(ip), nil)
	e.mustLkc("delete", "-f", id)
	c.assertReleased(ip)
}

// inNetnsWithoutIPv6 makes a network namespace of the test's own with
// IPv6 disabled (its all and default disable_ipv6, not the host's) and
// has the env's lkc run in it, as on a host whose IPv6 is disabled.
func (e *env) inNetnsWithoutIPv6() {
	t := e.t
	t.Helper()
	ns := fmt.Sprintf("lkc-noip6-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	for _, args := range [][]string{
		{"sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"},
		{"sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"},
		{"ip", "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("%v in %s: %v: %s", args, ns, err, out)
		}
	}
	wrapper := filepath.Join(t.TempDir(), "lkc")
	script := "#!/bin/sh\nexec nsenter --net=/run/netns/" + ns + " " + e.bin + ` "$@"` + "\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e.bin = wrapper
}

// TestNetworkHostIPv6Disabled: on a host whose IPv6 is disabled, a
// network whose bridge gets an IPv6 gateway address is refused in one
// line naming the sysctl, before anything is made (the bridge plugin's
// ADD would fail on the address, and its undo's DEL too); an IPv4 network
// works, and `state --check` of its container passes.
func TestNetworkHostIPv6Disabled(t *testing.T) {
	e := newEnv(t)
	e.inNetnsWithoutIPv6()
	c := newCNINet(e, "")
	id := e.id()
	e.failLkc(`^lkc: run: network `+c.name+`: its bridge `+c.bridge+` gets an IPv6 gateway address, and IPv6 is disabled on the host \(net\.ipv6\.conf\.all\.disable_ipv6=1\): `,
		"run", "-d", "--bundle", e.bundle([]string{"sleep", "60"}, c.annotate()), id)
	e.assertIDGone(id)
	c.assertReleased("")

	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[
 {"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":true,
  "ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":%q}]]}},
 {"type":"firewall"},{"type":"bandwidth","capabilities":{"bandwidth":true}}]}`, c.name, c.bridge, c.ipamDir, c.subnet)
	if err := os.WriteFile(filepath.Join(c.dir, c.name+".conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	id = e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "60"}, c.annotate("org.lkc.net-rate", "egress=10mbit")), id)
	e.mustLkc("state", "--check", id)
	e.mustLkc("delete", "-f", id)
	if l := c.leases(); len(l) > 0 {
		t.Errorf("leases left: %v", l)
	}
}
