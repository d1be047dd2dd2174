package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cniNet is one test's own CNI network: its bridge, subnets and IPAM data
// directory, apart from the host's default network and from other tests.
type cniNet struct {
	t        *testing.T
	e        *env
	name     string
	bridge   string
	subnet   string // IPv4, a /24
	subnet6  string // IPv6, a /64
	gateway  string
	dir      string // the configuration directory (LKC_NET_DIR)
	ipamDir  string
	fragment string // plugins after the bridge, JSON
}

var cniNets atomic.Int32

// newCNINet writes a network with the bridge, host-local (IPv4 and IPv6),
// portmap, firewall and bandwidth plugins into a directory of the test's
// and points lkc at it; extra replaces the plugins after the bridge when
// not empty. Skips with the reason when a plugin or iptables is missing.
func newCNINet(e *env, extra string) *cniNet {
	t := e.t
	t.Helper()
	for _, p := range []string{"bridge", "host-local", "portmap", "firewall", "bandwidth", "tuning"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/cni", p)); err != nil {
			t.Skipf("CNI plugin %s not installed in /usr/lib/cni (containernetworking-plugins)", p)
		}
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables not installed: portmap and firewall need it")
	}
	n := int(cniNets.Add(1))
	k := os.Getpid()%200 + 20
	c := &cniNet{
		t: t, e: e, name: fmt.Sprintf("it%d-%d", os.Getpid(), n), bridge: fmt.Sprintf("lkcit%d-%d", os.Getpid()%100000, n),
		subnet: fmt.Sprintf("10.%d.%d.0/24", k, 100+n), gateway: fmt.Sprintf("10.%d.%d.1", k, 100+n),
		subnet6: fmt.Sprintf("fd42:%x:%x::/64", k, n), dir: t.TempDir(), ipamDir: t.TempDir(), fragment: extra,
	}
	if c.fragment == "" {
		c.fragment = `{"type":"portmap","capabilities":{"portMappings":true}},{"type":"firewall"},{"type":"bandwidth","capabilities":{"bandwidth":true}}`
	}
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[
 {"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":true,"hairpinMode":true,
  "ipam":{"type":"host-local","dataDir":%q,"routes":[{"dst":"0.0.0.0/0"}],
   "ranges":[[{"subnet":%q}],[{"subnet":%q}]]}},
 %s]}`, c.name, c.bridge, c.ipamDir, c.subnet, c.subnet6, c.fragment)
	if err := os.WriteFile(filepath.Join(c.dir, c.name+".conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LKC_NET_DIR", c.dir)
	privateCNICache(t)
	t.Cleanup(c.cleanup)
	return c
}

// privateCNICache gives the test a libcni cache of its own
// (LKC_CNI_CACHE_DIR), one for all its networks: the host's stays
// untouched, and what `lkc network gc` finds there is the test's alone.
func privateCNICache(t *testing.T) string {
	if d, ok := cniCaches[t]; ok {
		return d
	}
	d := t.TempDir()
	t.Setenv("LKC_CNI_CACHE_DIR", d)
	cniCaches[t] = d
	t.Cleanup(func() { delete(cniCaches, t) })
	return d
}

// cniCaches are the running tests' caches (t.Setenv keeps them serial).
var cniCaches = map[*testing.T]string{}

// cleanup deletes the env's containers (the env's own clean-up runs later:
// t.Cleanup is last in, first out), while the test's LKC_NET_DIR and
// LKC_CNI_PATH are still set, so their DEL runs; then it removes the bridge,
// which no plugin's DEL does.
func (c *cniNet) cleanup() {
	for _, id := range c.e.ids {
		c.e.lkc("delete", "--force", id)
	}
	exec.Command("ip", "link", "del", c.bridge).Run()
}

// annotate makes a bundle mutation that asks for the network with extra
// annotations (key, value pairs).
func (c *cniNet) annotate(kv ...string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.network": c.name}
		for i := 0; i+1 < len(kv); i += 2 {
			s.Annotations[kv[i]] = kv[i+1]
		}
	}
}

// leases lists the addresses host-local has handed out on the network.
func (c *cniNet) leases() []string {
	entries, _ := os.ReadDir(filepath.Join(c.ipamDir, c.name))
	var out []string
	for _, e := range entries {
		if n := e.Name(); n != "lock" && !strings.HasPrefix(n, "last_reserved_ip") {
			out = append(out, n)
		}
	}
	return out
}

// ports lists the interfaces enslaved to the network's bridge.
func (c *cniNet) ports() string {
	out, err := exec.Command("ip", "-o", "link", "show", "master", c.bridge).Output()
	if err != nil {
		return "" // no bridge: ADD never ran
	}
	return strings.TrimSpace(string(out))
}

// rulesNaming returns the iptables and ip6tables rules that mention s.
func rulesNaming(s string) []string {
	return append(rulesIn("iptables-save", s), rulesIn("ip6tables-save", s)...)
}

// rulesIn returns the rules that mention s in what save (iptables-save,
// ip6tables-save) prints.
func rulesIn(save, s string) []string {
	var out []string
	b, _ := exec.Command(save).Output()
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// assertReleased fails the test if the network still holds a lease, a
// bridge port or a rule for addr.
func (c *cniNet) assertReleased(addr string) {
	c.t.Helper()
	if l := c.leases(); len(l) > 0 {
		c.t.Errorf("leases left in %s: %v", c.ipamDir, l)
	}
	if p := c.ports(); p != "" {
		c.t.Errorf("veths left on %s: %s", c.bridge, p)
	}
	// The plugins' comments name the network: name: \"NAME\" id: ...
	if r := rulesNaming(`\"` + c.name + `\"`); len(r) > 0 {
		c.t.Errorf("iptables rules left for network %s: %v", c.name, r)
	}
	if addr != "" {
		if r := rulesNaming(addr + "/"); len(r) > 0 {
			c.t.Errorf("iptables rules left for %s: %v", addr, r)
		}
	}
}

var inetRE = regexp.MustCompile(`inet (\d+\.\d+\.\d+\.\d+)/`)

// addr is the IPv4 address of eth0 in container id.
func (e *env) addr(id string) string {
	e.t.Helper()
	out := e.mustLkc("exec", id, "ip", "-o", "-4", "addr", "show", "eth0")
	m := inetRE.FindStringSubmatch(out)
	if m == nil {
		e.t.Fatalf("container %s has no IPv4 address on eth0: %q", id, out)
	}
	return m[1]
}

// httpdArgs serves "hello from NAME" on port 80.
func httpdArgs(name string) []string {
	return []string{"sh", "-c", "mkdir -p /tmp/www && echo hello from " + name + " > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www"}
}

func writableTmp(s *specs.Spec) {
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev"}})
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	cl := http.Client{Timeout: 5 * time.Second}
	var last error
	for deadline := time.Now().Add(settle); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := cl.Get(url)
		if err != nil {
			last = err
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.TrimSpace(string(b))
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

// TestNetworkAttachAndCrashDelete runs a server on a test network, reaches
// it from the host and from a second container on the network, then
// kills the container as a crash would and checks that `delete -f` gives
// back the lease, the veth and the iptables rules.
func TestNetworkAttachAndCrashDelete(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	id := e.id()
	b := e.bundle(httpdArgs("one"), func(s *specs.Spec) { c.annotate()(s); writableTmp(s) })
	e.mustLkc("run", "-d", "--bundle", b, id)
	ip := e.addr(id)
	if _, sub, _ := net.ParseCIDR(c.subnet); !sub.Contains(net.ParseIP(ip)) {
		t.Fatalf("container address %s is not in the network's subnet %s", ip, c.subnet)
	}
	if out := e.mustLkc("exec", id, "ip", "-o", "-6", "addr", "show", "eth0", "scope", "global"); !strings.Contains(out, "fd42:") {
		t.Errorf("no IPv6 address from the network on eth0: %q", out)
	}
	if got := httpGet(t, "http://"+ip+"/"); got != "hello from one" {
		t.Errorf("host to container: got %q", got)
	}
	if r := rulesNaming(ip + "/"); len(r) == 0 {
		t.Fatalf("no iptables rule names %s while the container runs; the check below would prove nothing", ip)
	}
	r := e.run([]string{"wget", "-q", "-O", "-", "http://" + ip + "/"}, c.annotate())
	if r.code != 0 || strings.TrimSpace(r.stdout) != "hello from one" {
		t.Errorf("container to container: %v", r)
	}
	e.mustLkc("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	e.mustLkc("delete", "-f", id)
	c.assertReleased(ip)
}

// TestNetworkConfigNotReadWithoutAnnotation proves a container without
// org.lkc.network never opens the network directory (and, as control,
// that one with it does).
func TestNetworkConfigNotReadWithoutAnnotation(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	opened := watchOpens(t, c.dir)
	if r := e.run([]string{"true"}, nil); r.code != 0 {
		t.Fatalf("run without networks: %v", r)
	}
	if n := opened(); n != 0 {
		t.Fatalf("a container without %s opened the network directory %d times", "org.lkc.network", n)
	}
	if r := e.run([]string{"true"}, c.annotate()); r.code != 0 {
		t.Fatalf("run with a network: %v", r)
	}
	if n := opened(); n == 0 {
		t.Fatalf("the watch saw no open of %s by a container with a network: it cannot tell", c.dir)
	}
	c.assertReleased("")
}

// TestNetworkBadRequests checks requests that cannot be met: one-line
// errors naming what is wrong, and nothing left behind.
func TestNetworkBadRequests(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	joined := func(s *specs.Spec) {
		c.annotate()(s)
		for i, ns := range s.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = "/proc/self/ns/net"
			}
		}
	}
	noNetNS := func(s *specs.Spec) {
		c.annotate()(s)
		badDropNamespace(s, specs.NetworkNamespace)
	}
	for _, bad := range []struct {
		name   string
		mutate func(*specs.Spec)
		want   string
	}{
		{"JoinedNamespace", joined, `org.lkc.network: the config joins the network namespace /proc/self/ns/net`},
		{"NoNamespace", noNetNS, `org.lkc.network: the config has no network namespace`},
		{"UnknownNetwork", func(s *specs.Spec) { s.Annotations = map[string]string{"org.lkc.network": "nosuchnet"} }, `network nosuchnet: no configuration of that name in ` + c.dir},
		{"BadPorts", c.annotate("org.lkc.ports", "80"), `org.lkc.ports: "80": use \[HOSTIP:\]HOSTPORT:CONTAINERPORT`},
		{"BadRate", c.annotate("org.lkc.net-rate", "egress=fast"), `org.lkc.net-rate: egress: rate "fast"`},
	} {
		t.Run(bad.name, func(t *testing.T) {
			b := e.bundle([]string{"true"}, bad.mutate)
			e.failLkc(bad.want, "run", "--bundle", b, e.id())
		})
	}
	c.assertReleased("")
}

// TestNetworkAddFailureLeavesNothing fails ADD in a plugin after the bridge
// has made the veth and leased an address: create must fail with the
// network's name and undo all of it.
// The firewall plugin before it has added rules for the address, which
// its DEL removes only when told the address (libcni caches no result
// of a failed ADD).
func TestNetworkAddFailureLeavesNothing(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, `{"type":"firewall"},{"type":"tuning","sysctl":{"net.ipv4.conf.eth0.no_such_sysctl":"1"}}`)
	b := e.bundle([]string{"true"}, c.annotate())
	e.failLkc(`network `+c.name+`: plugin type="tuning" failed \(add\)`, "run", "--bundle", b, e.id())
	c.assertReleased("")
	for _, prefix := range []string{strings.TrimSuffix(c.subnet, "0/24"), strings.TrimSuffix(c.subnet6, "/64")} {
		if r := rulesNaming(" " + prefix); len(r) > 0 {
			t.Errorf("iptables rules left for the network's addresses: %v", r)
			dropRulesNaming([]string{prefix + "2"})
		}
	}
}

// TestNetworkAddMissingPluginLeavesNothing: a network whose list names a
// plugin that is not installed fails create at that plugin, after the
// bridge has made the veth and leased an address; the undo must give
// those back (the missing plugin, which never ran, has nothing to undo),
// and leave no state directory or namespace pin for delete to trip on.
func TestNetworkAddMissingPluginLeavesNothing(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, `{"type":"lkc-test-no-such-plugin"}`)
	b := e.bundle([]string{"true"}, c.annotate())
	id := e.id()
	e.failLkc(`network `+c.name+`: plugin type="lkc-test-no-such-plugin" failed \(add\): failed to find plugin`, "run", "--bundle", b, id)
	e.assertIDGone(id)
	c.assertReleased("")
	if m := mountsUnder(t, e.root); len(m) > 0 {
		t.Errorf("mounts left under the root: %v", m)
	}
}

// TestNetworkDeleteWithoutPlugins: a delete that cannot find the plugins
// (run with another LKC_CNI_PATH than create) fails naming the plugin and
// keeps the record, so a delete that finds them gives everything back.
func TestNetworkDeleteWithoutPlugins(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	id := e.id()
	b := e.bundle([]string{"sleep", "60"}, c.annotate())
	e.mustLkc("run", "-d", "--bundle", b, id)
	ip := e.addr(id)
	t.Setenv("LKC_CNI_PATH", t.TempDir())
	e.failLkc(`network `+c.name+`: plugin type="bandwidth" failed \(delete\): failed to find plugin`, "delete", "-f", id)
	if l := c.leases(); len(l) == 0 {
		t.Fatal("no lease after a delete that could run no plugin")
	}
	os.Unsetenv("LKC_CNI_PATH")
	e.mustLkc("delete", "-f", id)
	c.assertReleased(ip)
	e.assertIDGone(id)
}

// hostAddr is an IPv4 address of the host outside the test's networks:
// the source of its default route, or the loopback where it has none.
func hostAddr() string {
	out, err := exec.Command("ip", "-4", "route", "get", "192.0.2.200").Output()
	if m := regexp.MustCompile(` src (\d+\.\d+\.\d+\.\d+)`).FindSubmatch(out); err == nil && m != nil {
		return string(m[1])
	}
	return "127.0.0.1"
}

// freeHostPort is a TCP port nobody listens on now.
func freeHostPort(t *testing.T) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(freePort(t))
	n, _ := strconv.Atoi(p)
	return n
}

// TestNetworkPorts publishes a container's HTTP server through portmap and
// fetches it through the host's address and port, from the host and from
// another container; delete removes the mapping.
func TestNetworkPorts(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	id := e.id()
	port := freeHostPort(t)
	b := e.bundle(httpdArgs("ports"), func(s *specs.Spec) {
		c.annotate("org.lkc.ports", fmt.Sprintf("%d:80/tcp", port))(s)
		writableTmp(s)
	})
	e.mustLkc("run", "-d", "--bundle", b, id)
	url := fmt.Sprintf("http://%s:%d/", hostAddr(), port)
	if got := httpGet(t, url); got != "hello from ports" {
		t.Errorf("GET %s: %q", url, got)
	}
	// From another address than the host's own: a second container on the
	// network, whose request comes in through the bridge (PREROUTING).
	if r := e.run([]string{"wget", "-q", "-O", "-", url}, c.annotate()); r.code != 0 || strings.TrimSpace(r.stdout) != "hello from ports" {
		t.Errorf("GET %s from another container: %v", url, r)
	}
	ip := e.addr(id)
	e.mustLkc("delete", "-f", id)
	c.assertReleased(ip)
	if r := rulesNaming(fmt.Sprintf("--dport %d ", port)); len(r) > 0 {
		t.Errorf("port mapping rules left: %v", r)
	}
}

// TestNetworkTwoNetworks attaches a container to two networks, as eth0
// and eth1, each with its address, and checks delete releases both.
func TestNetworkTwoNetworks(t *testing.T) {
	e := newEnv(t)
	first, second, both := twoNetworks(e, `{"type":"firewall"}`)
	id := e.id()
	b := e.bundle([]string{"sleep", "60"}, both)
	e.mustLkc("run", "-d", "--bundle", b, id)
	out := e.mustLkc("exec", id, "ip", "-o", "-4", "addr")
	for i, c := range []*cniNet{first, second} {
		_, sub, _ := net.ParseCIDR(c.subnet)
		m := regexp.MustCompile(fmt.Sprintf(`eth%d\s+inet (\S+)/`, i)).FindStringSubmatch(out)
		if m == nil || !sub.Contains(net.ParseIP(m[1])) {
			t.Errorf("eth%d has no address in %s: %q", i, c.subnet, out)
		}
	}
	e.mustLkc("delete", "-f", id)
	first.assertReleased("")
	second.assertReleased("")
}

// twoNetworks makes two test networks, the second with plugins extra
// after its bridge, both in the second's LKC_NET_DIR, and a bundle
// mutation asking for both.
func twoNetworks(e *env, extra string) (first, second *cniNet, annotate func(*specs.Spec)) {
	e.t.Helper()
	first = newCNINet(e, "")
	second = newCNINet(e, extra) // LKC_NET_DIR is now second's
	conf, err := os.ReadFile(filepath.Join(first.dir, first.name+".conflist"))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(second.dir, first.name+".conflist"), conf, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return first, second, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.network": first.name + "," + second.name}
	}
}

// TestNetworkSecondNetworkFails: ADD of the second network fails after
// its bridge leased an address; create fails naming it, and DEL of both
// gives back the first network's lease, veth and rules too.
func TestNetworkSecondNetworkFails(t *testing.T) {
	e := newEnv(t)
	first, second, both := twoNetworks(e, `{"type":"firewall"},{"type":"tuning","sysctl":{"net.ipv4.conf.eth1.no_such_sysctl":"1"}}`)
	id := e.id()
	e.failLkc(`network `+second.name+`: plugin type="tuning" failed \(add\)`, "run", "--bundle", e.bundle([]string{"true"}, both), id)
	e.assertIDGone(id)
	first.assertReleased("")
	second.assertReleased("")
}

// TestNetworkCreateFailsAfterAdd: a createContainer hook fails after ADD
// (init has built the container); the create's undo runs DEL: no lease,
// veth, rule or port note stays.
func TestNetworkCreateFailsAfterAdd(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	id := e.id()
	port := freeHostPort(t)
	b := e.bundle([]string{"true"}, func(s *specs.Spec) {
		c.annotate("org.lkc.ports", fmt.Sprintf("%d:80", port), "org.lkc.net-rate", "egress=10mbit")(s)
		s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/false"}}}
	})
	e.failLkc(`createContainer hook #0 /bin/false`, "run", "--bundle", b, id)
	e.assertIDGone(id)
	c.assertReleased("")
	if r := rulesNaming(fmt.Sprintf("--dport %d ", port)); len(r) > 0 {
		t.Errorf("port mapping rules left: %v", r)
	}
	// The port is free again: another container may publish it.
	id = e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "60"}, c.annotate("org.lkc.ports", fmt.Sprintf("%d:80", port))), id)
	e.mustLkc("delete", "-f", id)
	c.assertReleased("")
}
