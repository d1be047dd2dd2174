package integration

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// networkedEcho runs an echo server on port 5000 in a container on c and
// returns its id, bundle and address, with a connection from the host to
// it that has carried one line.
func networkedEcho(e *env, c *cniNet) (id, bundle, addr string, conn *bufio.ReadWriter) {
	e.t.Helper()
	bundle = e.bundle([]string{"nc", "-l", "-p", "5000", "-e", "cat"}, c.annotate())
	id = e.id()
	e.mustLkc("run", "-d", "--bundle", bundle, id)
	addr = e.addr(id)
	nc := dialRetry(e.t, addr+":5000")
	conn = bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))
	echo(e.t, nc, conn.Reader, "before-checkpoint")
	return id, bundle, addr, conn
}

// TestNetworkCheckpointKeepsAddress checkpoints a container on a CNI
// network with a connection from the host open, restores it and checks
// that it has the same address and the connection carries on; the
// checkpoint gave the lease back (the container was gone) and the
// restore took the same one.
func TestNetworkCheckpointKeepsAddress(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	c := newCNINet(e, "")
	id, bundle, addr, conn := networkedEcho(e, c)

	images := filepath.Join(t.TempDir(), "images")
	e.mustLkc("checkpoint", "--tcp-established", "--image-path", images, id)
	c.assertReleased(addr)
	start := time.Now()
	e.mustLkc("restore", "-d", "--tcp-established", "--bundle", bundle, "--image-path", images, id)
	t.Logf("restore with a network: %v", time.Since(start))
	if got := e.addr(id); got != addr {
		t.Fatalf("restored with address %s, had %s", got, addr)
	}
	if l := c.leases(); len(l) != 2 || !strings.Contains(strings.Join(l, " "), addr) {
		t.Fatalf("leases after restore: %v, want %s and its IPv6 one", l, addr)
	}
	if _, err := conn.WriteString("after-restore\n"); err == nil {
		err = conn.Flush()
	} else {
		t.Fatal(err)
	}
	got, err := readLineWithin(conn.Reader, 10*time.Second)
	if err != nil || got != "after-restore" {
		t.Fatalf("echo after restore: %q, %v", got, err)
	}
	e.mustLkc("delete", "-f", id)
	c.assertReleased(addr)
}

// readLineWithin reads one line, giving up after d.
func readLineWithin(r *bufio.Reader, d time.Duration) (string, error) {
	type line struct {
		s   string
		err error
	}
	ch := make(chan line, 1)
	go func() {
		s, err := r.ReadString('\n')
		ch <- line{strings.TrimSpace(s), err}
	}()
	select {
	case l := <-ch:
		return l.s, l.err
	case <-time.After(d):
		return "", os.ErrDeadlineExceeded
	}
}

// TestNetworkRestoreFailureLeavesNothing restores a networked checkpoint
// whose address was taken meanwhile (ADD fails), then with images CRIU
// cannot read (the restore fails after ADD gave the address back, which
// CRIU, through a wrapper, sees leased when it starts): each fails in one
// line and leaves no lease, veth, iptables rule or state.
func TestNetworkRestoreFailureLeavesNothing(t *testing.T) {
	criu := requireCriu(t)
	e := newEnv(t)
	c := newCNINet(e, "")
	bundle := e.bundle([]string{"sleep", "100"}, c.annotate())
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", bundle, id)
	addr := e.addr(id)
	images := filepath.Join(t.TempDir(), "images")
	e.mustLkc("checkpoint", "--image-path", images, id)

	// The address taken meanwhile: ADD fails.
	lease := filepath.Join(c.ipamDir, c.name, addr)
	if err := os.WriteFile(lease, []byte("someone-else\neth0"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.lkc("restore", "-d", "--bundle", bundle, "--image-path", images, id)
	e.checkOneLineFailure(r, "restore: .*network "+c.name+": .*"+regexp.QuoteMeta(addr), nil)
	e.assertIDGone(id)
	os.Remove(lease)
	c.assertReleased(addr)

	// Break the images so that CRIU fails after the ADD.
	if err := os.WriteFile(filepath.Join(images, "pstree.img"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	seen := filepath.Join(t.TempDir(), "seen")
	wrapper := freshCriu(t, criu)
	os.Remove(wrapper + ".launch")
	script := fmt.Sprintf("#!/bin/sh\n[ -e %q ] && echo \"leased $1\" >> %q\nexec %q \"$@\"\n", lease, seen, criu)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r = e.lkc("--criu", wrapper, "restore", "-d", "--bundle", bundle, "--image-path", images, id)
	e.checkOneLineFailure(r, "restore", nil)
	if log, _ := os.ReadFile(seen); !strings.Contains(string(log), "leased swrk") {
		t.Fatalf("CRIU's restore did not start with %s leased (%q): the failure came before the ADD, which this half does not test", addr, log)
	}
	e.assertIDGone(id)
	c.assertReleased(addr)
	if _, err := os.Stat(filepath.Join(e.root, id)); !os.IsNotExist(err) {
		t.Fatalf("state directory left: %v", err)
	}
}

// hostNetworks writes, for each test host, a CNI network of the same name,
// bridge and subnet with an IPAM store of its own, as two real hosts with
// the same configuration would have, and returns the directories
// (LKC_NET_DIR) and IPAM stores; extra are plugins after the bridge (JSON,
// each with its leading comma).
func hostNetworks(t *testing.T, h *testHosts, name, subnet string, extra ...string) (dirs, ipam [2]string) {
	privateCNICache(t)
	for i := range dirs {
		dirs[i], ipam[i] = t.TempDir(), t.TempDir()
		conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[{"type":"bridge","bridge":"cni0","isGateway":true,
 "ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":%q}]]}}%s]}`, name, ipam[i], subnet, strings.Join(extra, ""))
		if err := os.WriteFile(filepath.Join(dirs[i], name+".conflist"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dirs, ipam
}

// runEchoOn runs an echo server on port 5000 in a container on network
// name on host x, and returns its id and address.
func runEchoOn(t *testing.T, h *testHosts, x *testHost, name string) (string, string) {
	t.Helper()
	id := x.e.id()
	for _, y := range h.hosts {
		y.e.ids = append(y.e.ids, id)
	}
	bundle := x.e.bundle([]string{"nc", "-l", "-p", "5000", "-e", "cat"}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.network": name}
	})
	// Its stdio is /dev/null, which exists on every host.
	if err := h.lkcIn(x, "run", "-d", "--bundle", bundle, id).Run(); err != nil {
		t.Fatalf("lkc run: %v", err)
	}
	return id, x.e.addr(id)
}

// echoFrom checks that host x reaches the echo server at addr.
func echoFrom(t *testing.T, x *testHost, addr, line string) {
	t.Helper()
	runtime.LockOSThread()
	c, err := dialInNetns("/run/netns/"+x.ns, addr+":5000")
	if !errors.Is(err, errNetnsStuck) {
		runtime.UnlockOSThread()
	}
	if err != nil {
		t.Fatalf("reaching the container from %s: %v", x.ns, err)
	}
	defer c.Close()
	echo(t, c, bufio.NewReader(c), line)
}

// TestNetworkMigrateKeepsAddress moves a container on a CNI network
// between two test hosts that have the same network configuration: it
// arrives with its address, the target's IPAM holds it, the source's has
// let it go, and the target host reaches the container's server there.
func TestNetworkMigrateKeepsAddress(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	name := fmt.Sprintf("mig%d", os.Getpid())
	dirs, ipam := hostNetworks(t, h, name, "10.203.7.0/24")
	t.Setenv("LKC_NET_DIR", dirs[1])
	h.startServe(b)
	t.Setenv("LKC_NET_DIR", dirs[0])

	id, addr := runEchoOn(t, h, a, name)
	sum := mustMigrate(t, h, a, b, id, "--shared-storage", "--mode", "stopcopy")
	t.Logf("downtime %.1f ms, total %.1f ms", sum.DowntimeMS, sum.TotalMS)
	if got := b.e.addr(id); got != addr {
		t.Fatalf("arrived with address %s, had %s", got, addr)
	}
	for i, want := range []bool{false, true} {
		_, err := os.Stat(filepath.Join(ipam[i], name, addr))
		if (err == nil) != want {
			t.Errorf("host %d's lease of %s: %v, want held=%v", i, addr, err, want)
		}
	}
	echoFrom(t, b, addr, "after-migration")
	if out, err := h.lkcIn(b, "delete", "-f", id).CombinedOutput(); err != nil {
		t.Fatalf("lkc delete on host b: %v: %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(ipam[1], name, addr)); err == nil {
		t.Errorf("host b still leases %s after delete", addr)
	}
}

// TestNetworkMigrateKeepsUpdatedRate: a limit given with `update
// --net-rate` to a container created without one moves with it: the
// target's network limits it, and its state says so.
func TestNetworkMigrateKeepsUpdatedRate(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	name := fmt.Sprintf("migr%d", os.Getpid())
	dirs, _ := hostNetworks(t, h, name, "10.203.9.0/24", `,{"type":"bandwidth","capabilities":{"bandwidth":true}}`)
	t.Setenv("LKC_NET_DIR", dirs[1])
	h.startServe(b)
	t.Setenv("LKC_NET_DIR", dirs[0])

	id, _ := runEchoOn(t, h, a, name)
	if out, err := h.lkcIn(a, "update", "--net-rate", "ingress=20mbit", id).CombinedOutput(); err != nil {
		t.Fatalf("lkc update --net-rate on host a: %v: %s", err, out)
	}
	mustMigrate(t, h, a, b, id, "--shared-storage", "--mode", "stopcopy")
	out, err := exec.Command("ip", "netns", "exec", b.ns, "tc", "qdisc", "show").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "rate 20Mbit") {
		t.Errorf("qdiscs on host b: %v: %s, want the 20 Mbit/s limit", err, out)
	}
	if a, _ := b.e.state(id)["annotations"].(map[string]any); a["org.lkc.net-rate"] != "ingress=20000000bit" {
		t.Errorf("state on host b shows annotations %v", a)
	}
	if out, err := h.lkcIn(b, "delete", "-f", id).CombinedOutput(); err != nil {
		t.Fatalf("lkc delete on host b: %v: %s", err, out)
	}
}

// TestNetworkMigrateNoNetworkOnTarget: the target has no network of that
// name, so its restore fails; the container carries on on the source with
// its address and its veth back on the bridge, and the target keeps
// nothing (no container, lease or veth).
func TestNetworkMigrateNoNetworkOnTarget(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	name := fmt.Sprintf("mig%d", os.Getpid())
	dirs, ipam := hostNetworks(t, h, name, "10.203.8.0/24")
	t.Setenv("LKC_NET_DIR", t.TempDir()) // the target's: empty
	h.startServe(b)
	t.Setenv("LKC_NET_DIR", dirs[0])

	id, addr := runEchoOn(t, h, a, name)
	r := h.migrate(a, b, id, "--shared-storage", "--mode", "stopcopy")
	if r.code == 0 || !strings.Contains(r.stderr, "no configuration of that name") {
		t.Fatalf("migrate to a host without the network: %v", r)
	}
	a.e.waitStatus(id, "running")
	if got := a.e.addr(id); got != addr {
		t.Fatalf("after the failed move the address is %s, was %s", got, addr)
	}
	echoFrom(t, a, addr, "after-failed-migration")
	if r := b.e.lkc("state", id); r.code == 0 {
		t.Errorf("the target kept the container: %s", r.stdout)
	}
	if entries, _ := os.ReadDir(filepath.Join(ipam[1], name)); len(entries) > 0 {
		t.Errorf("the target's IPAM store holds %d entries", len(entries))
	}
	out, _ := exec.Command("ip", "-n", b.ns, "-o", "link", "show", "type", "veth").Output()
	if strings.Contains(string(out), "veth") && strings.Contains(string(out), "cni0") {
		t.Errorf("veths left on the target's bridge: %s", out)
	}
}

// TestNetworkRestoreCost measures `lkc restore -d` of a sleeping
// container with and without a CNI network (medians of 7, interleaved),
// for docs/journal; opt-in with LKC_NET_BENCH=1.
func TestNetworkRestoreCost(t *testing.T) {
	if os.Getenv("LKC_NET_BENCH") == "" {
		t.Skip("a measurement: set LKC_NET_BENCH=1")
	}
	requireCriu(t)
	e := newEnv(t)
	c := newCNINet(e, "")
	bundles := map[string]string{
		"none": e.bundle([]string{"sleep", "100"}, nil),
		"cni":  e.bundle([]string{"sleep", "100"}, c.annotate()),
	}
	times := map[string][]time.Duration{}
	for i := 0; i < 7; i++ {
		for _, v := range []string{"none", "cni"} {
			id := e.id()
			e.mustLkc("run", "-d", "--bundle", bundles[v], id)
			images := filepath.Join(t.TempDir(), "images")
			e.mustLkc("checkpoint", "--image-path", images, id)
			start := time.Now()
			e.mustLkc("restore", "-d", "--bundle", bundles[v], "--image-path", images, id)
			times[v] = append(times[v], time.Since(start))
			e.mustLkc("delete", "-f", id)
		}
	}
	for v, d := range times {
		slices.Sort(d)
		t.Logf("restore, network %s: median %v (min %v, max %v)", v, d[len(d)/2], d[0], d[len(d)-1])
	}
}
