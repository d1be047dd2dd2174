package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// loseStateDir ends container id as a crash would and takes its state
// directory away without a delete: its processes killed, its cgroups
// removed, then the directory removed by hand (rm -rf, which leaves the
// pinned namespace: its mount point resists) or, with reboot, the way a
// reboot loses /run (the pin unmounted first, so the namespace and the
// veth in it end with the processes). What stays is the CNI attachment in
// libcni's cache, its lease and the rules outside the namespace.
func (e *env) loseStateDir(id string, reboot bool) {
	e.t.Helper()
	e.mustLkc("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	for _, dir := range cgroupDirs(id) {
		removeCgroupDir(e.t, dir)
	}
	dir := filepath.Join(e.root, id)
	if reboot {
		if err := unix.Unmount(filepath.Join(dir, "netns"), unix.MNT_DETACH); err != nil {
			e.t.Fatal(err)
		}
	}
	os.RemoveAll(dir)
	if _, err := os.Stat(filepath.Join(dir, "network.json")); err == nil {
		e.t.Fatalf("%s still has its network record", dir)
	}
	e.t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(dir, "state.json")); err == nil {
			return // a new container of the id, which the env deletes
		}
		unix.Unmount(filepath.Join(dir, "netns"), unix.MNT_DETACH)
		os.RemoveAll(dir)
	})
}

var masqJumpRE = regexp.MustCompile(`-j (CNI-[0-9a-f]+)`)

// masqChain is the bridge plugin's masquerade chain of the container with
// IPv4 address addr (the nat table's POSTROUTING rule for it jumps there).
func masqChain(t *testing.T, addr string) string {
	t.Helper()
	for _, r := range rulesNaming(addr + "/") {
		if m := masqJumpRE.FindStringSubmatch(r); m != nil && strings.HasPrefix(r, "-A POSTROUTING") {
			return m[1]
		}
	}
	t.Fatalf("no masquerade rule for %s: the check below would prove nothing", addr)
	return ""
}

// portNotes lists the published-port notes that name container id's
// state directory (/run/lkc-ports/<netns>/<note>).
func portNotes(id string) []string {
	files, _ := filepath.Glob("/run/lkc-ports/*/*")
	var out []string
	for _, f := range files {
		if b, _ := os.ReadFile(f); strings.HasSuffix(string(b), "/"+id) {
			out = append(out, f)
		}
	}
	return out
}

// leaseOf says whether the network holds a lease for addr.
func (c *cniNet) leaseOf(addr string) bool { return slices.Contains(c.leases(), addr) }

// TestNetworkGCStateDirRemoved: a container's state directory removed by
// hand leaves its attachment; `lkc network gc` runs its DEL from libcni's
// cache in the namespace the pin still holds: the lease, the veth, the
// masquerade chain, the firewall and port rules, the rate limit's ifb and
// the port's note go, and the pin is released. A live container's
// attachment is untouched, and a second gc, with nothing stale, does
// nothing.
func TestNetworkGCStateDirRemoved(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	live, gone := e.id(), e.id()
	port := freeHostPort(t)
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "100"},
		c.annotate("org.lkc.ports", fmt.Sprintf("%d:80", port), "org.lkc.net-rate", "egress=10mbit")), gone)
	ifb := c.egressIfb(t)
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "100"}, c.annotate()), live)
	liveAddr, goneAddr := e.addr(live), e.addr(gone)
	chain := masqChain(t, goneAddr)
	if ifb == "" || len(rulesNaming(goneAddr+":80")) == 0 || len(portNotes(gone)) == 0 {
		t.Fatalf("no ifb (%q), DNAT rule or port note for the container: the check below would prove nothing", ifb)
	}
	e.loseStateDir(gone, false)
	if !c.leaseOf(goneAddr) || len(strings.Split(c.ports(), "\n")) != 2 {
		t.Fatalf("the lost container's lease or veth is gone before gc (leases %v, ports %q): the check below would prove nothing", c.leases(), c.ports())
	}
	dir := filepath.Join(e.root, gone)
	out := e.mustLkc("network", "gc")
	want := "network gc: removed 1 stale attachments (" + c.name + "/eth0 of " + dir + "), kept 1 of live containers\n"
	if out != want {
		t.Errorf("gc printed %q, want %q", out, want)
	}
	if c.leaseOf(goneAddr) {
		t.Errorf("the lease of %s is left: %v", goneAddr, c.leases())
	}
	if p := c.ports(); len(strings.Split(p, "\n")) != 1 {
		t.Errorf("want the live container's veth alone on %s, have %q", c.bridge, p)
	}
	if r := rulesNaming(goneAddr + "/"); len(r) > 0 {
		t.Errorf("rules left for %s: %v", goneAddr, r)
	}
	if r := rulesNaming(chain); len(r) > 0 {
		t.Errorf("masquerade chain %s left: %v", chain, r)
	}
	if r := rulesNaming(goneAddr + ":80"); len(r) > 0 {
		t.Errorf("port rules left for %s: %v", goneAddr, r)
	}
	if exec.Command("ip", "link", "show", ifb).Run() == nil {
		t.Errorf("the rate limit's ifb %s is left", ifb)
	}
	if n := portNotes(gone); len(n) > 0 {
		t.Errorf("port notes left: %v", n)
	}
	if m := mountsUnder(t, dir); len(m) > 0 {
		t.Errorf("the namespace pin is left: %v", m)
	}

	if !c.leaseOf(liveAddr) || e.addr(live) != liveAddr {
		t.Errorf("the live container lost its address %s (leases %v)", liveAddr, c.leases())
	}
	e.mustLkc("state", "--check", live)
	if out := e.mustLkc("network", "gc"); out != "network gc: removed 0 stale attachments, kept 1 of live containers\n" {
		t.Errorf("gc with nothing stale printed %q", out)
	}
	e.mustLkc("delete", "-f", live)
	c.assertReleased(liveAddr)
}

// pluginsWithout is a plugin directory (LKC_CNI_PATH) holding Debian's
// plugins but the one named.
func pluginsWithout(t *testing.T, name string) string {
	dir := t.TempDir()
	entries, err := os.ReadDir("/usr/lib/cni")
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range entries {
		if ent.Name() != name {
			if err := os.Symlink(filepath.Join("/usr/lib/cni", ent.Name()), filepath.Join(dir, ent.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// withoutMasq rewrites the network without the bridge's masquerading: a
// reboot takes the namespace, and the bridge plugin (1.1.1) removes the
// masquerade rules only of the addresses it finds in it (a real reboot
// takes the rules too; here they would stay as the host's).
func (c *cniNet) withoutMasq() {
	file := filepath.Join(c.dir, c.name+".conflist")
	b, err := os.ReadFile(file)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(b), `"ipMasq":true`, `"ipMasq":false`, 1)), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// TestNetworkGCAfterReboot: containers on two networks lose their state
// directories and namespaces as at a reboot. A gc that cannot run one
// network's DEL (a plugin it does not find: tuning, which only the
// second network has) fails, naming the network
// and the container, and still collects the other; the next gc, with the
// plugin found, collects the rest.
func TestNetworkGCAfterReboot(t *testing.T) {
	e := newEnv(t)
	first := newCNINet(e, "")
	first.withoutMasq()
	a := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "100"}, first.annotate()), a)
	second := newCNINet(e, `{"type":"firewall"},{"type":"tuning"}`) // LKC_NET_DIR is now second's
	second.withoutMasq()
	b := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "100"}, second.annotate()), b)
	addrA, addrB := e.addr(a), e.addr(b)
	e.loseStateDir(a, true)
	e.loseStateDir(b, true)
	t.Cleanup(func() { dropRulesNaming([]string{addrA, addrB}) })
	for _, addr := range []string{addrA, addrB} {
		if len(rulesNaming(addr+"/")) == 0 {
			t.Fatalf("no firewall rule for %s: the check below would prove nothing", addr)
		}
	}

	t.Setenv("LKC_CNI_PATH", pluginsWithout(t, "tuning"))
	r := e.lkc("network", "gc")
	e.checkOneLineFailure(r, `^lkc: network: network `+second.name+`, container `+regexp.QuoteMeta(filepath.Join(e.root, b))+`: .*"tuning"`, []string{"network", "gc"})
	if want := "network gc: removed 1 stale attachments (" + first.name + "/eth0 of " + filepath.Join(e.root, a) + "), kept 0 of live containers, 1 failed\n"; r.stdout != want {
		t.Errorf("gc printed %q, want %q", r.stdout, want)
	}
	first.assertReleased(addrA)
	if !second.leaseOf(addrB) {
		t.Errorf("the failed DEL gave back the lease of %s", addrB)
	}

	t.Setenv("LKC_CNI_PATH", "/usr/lib/cni")
	want := "network gc: removed 1 stale attachments (" + second.name + "/eth0 of " + filepath.Join(e.root, b) + "), kept 0 of live containers\n"
	if out := e.mustLkc("network", "gc"); out != want {
		t.Errorf("gc printed %q, want %q", out, want)
	}
	second.assertReleased(addrB)
}

// staleAttachment makes a container on a network of its own and loses
// its state directory as at a reboot: its attachment, with the lease of
// addr, is stale.
func (e *env) staleAttachment() (c *cniNet, addr string) {
	c = newCNINet(e, "")
	c.withoutMasq()
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "100"}, c.annotate()), id)
	addr = e.addr(id)
	e.loseStateDir(id, true)
	e.t.Cleanup(func() { dropRulesNaming([]string{addr}) })
	return c, addr
}

// TestNetworkGCAtDaemonStart: the daemon collects at its start, which a
// reboot goes through (its systemd unit, the set-up's start).
func TestNetworkGCAtDaemonStart(t *testing.T) {
	d := newDaemonEnv(t)
	c, addr := d.staleAttachment()
	d.start()
	for deadline := time.Now().Add(settle); c.leaseOf(addr); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon's start did not collect the lease of %s", addr)
		}
	}
	c.assertReleased(addr)
	// The lease goes at the attachment's DEL, the line once the whole
	// collection is done.
	var logged []byte
	for deadline := time.Now().Add(settle); !strings.Contains(string(logged), "netgc: removed 1 stale attachments"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("daemon.log does not say what netgc collected:\n%s", logged)
		}
		logged, _ = os.ReadFile(filepath.Join(d.dir, "daemon.log"))
	}
}

// TestNetworkGCBadSubcommand: anything but `network gc` fails in one line.
func TestNetworkGCBadSubcommand(t *testing.T) {
	e := newEnv(t)
	e.failLkc(`^lkc: network: want the subcommand gc \(usage: lkc network gc\)$`, "network", "collect")
	e.failLkc(`^lkc: network: want the subcommand gc`, "network")
}

// TestNetworkGCSameIDReused: a container's state directory is lost as at
// a reboot, and a container of the same id is created in the same root
// (the same CNI container id) while a gc runs. The create runs DEL of
// what its predecessor left first (host-local refuses a second lease to
// one container id), and the gc, which waits for the create's ADD, takes
// nothing of the new container.
func TestNetworkGCSameIDReused(t *testing.T) {
	e := newEnv(t)
	becomeSubreaper(t)
	plugins := installPlugin(t, "lkc-test-slow", slowPlugin)
	c := newCNINet(e, `{"type":"lkc-test-slow"}`)
	c.withoutMasq()
	id := e.id()
	bundle := e.bundle([]string{"sleep", "100"}, c.annotate())
	e.mustLkc("run", "-d", "--bundle", bundle, id)
	old := e.addr(id)
	e.loseStateDir(id, true)
	os.Remove(filepath.Join(plugins, "slow.pid"))

	cmd := exec.Command(e.bin, "--root", e.root, "run", "-d", "--bundle", bundle, id)
	// A file, not a pipe: the container keeps lkc's stderr, and Wait
	// would wait for it to end.
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	output := func() string { b, _ := os.ReadFile(stderr.Name()); return string(b) }
	pidFile := filepath.Join(plugins, "slow.pid")
	startUntil(t, cmd, pidFile, "the slow plugin", output)
	gc := e.lkc("network", "gc")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the second create of %s: %v: %s", id, err, output())
	}
	if gc.code != 0 || !strings.HasPrefix(gc.stdout, "network gc: removed 0 stale attachments") {
		t.Errorf("gc beside the create: %v", gc)
	}
	addr := e.addr(id)
	if !c.leaseOf(addr) || c.ports() == "" {
		t.Errorf("the new container lost its lease or veth (leases %v, ports %q)", c.leases(), c.ports())
	}
	if _, err := os.Stat(filepath.Join(plugins, "slow.rule")); err != nil {
		t.Errorf("the new container's ADD lost its rule: %v", err)
	}
	if addr != old && c.leaseOf(old) {
		t.Errorf("the old lease %s is left beside the new %s", old, addr)
	}
	e.mustLkc("delete", "-f", id)
	c.assertReleased(addr)
}
