package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hangPlugin is a CNI plugin whose ADD never ends (it writes its pid
// first, so the test can end it) and whose DEL succeeds.
const hangPlugin = `#!/bin/sh
case "$CNI_COMMAND" in
ADD) echo $$ > "$(dirname "$0")/hang.pid"; exec sleep 60 ;;
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
esac
exit 0
`

// TestNetworkCreateCrashDelete kills lkc while ADD runs, after the bridge
// has made the veth and leased an address; `delete -f` must then give all
// of it back, from the record written before ADD and the pinned namespace,
// and remove the intent the create wrote before ADD.
func TestNetworkCreateCrashDelete(t *testing.T) {
	e := newEnv(t)
	becomeSubreaper(t)
	plugins := installPlugin(t, "lkc-test-hang", hangPlugin)
	c := newCNINet(e, `{"type":"lkc-test-hang"}`)
	id := e.id()
	b := e.bundle([]string{"true"}, c.annotate())
	cmd := exec.Command(e.bin, "--root", e.root, "run", "--bundle", b, id)
	pidFile := filepath.Join(plugins, "hang.pid")
	startUntil(t, cmd, pidFile, "the hanging plugin", func() string { return "" })
	cmd.Process.Kill()
	cmd.Wait()
	if b, err := os.ReadFile(pidFile); err == nil {
		exec.Command("kill", "-9", strings.TrimSpace(string(b))).Run()
	}
	if len(c.leases()) == 0 || c.ports() == "" {
		t.Fatalf("no lease or veth after the bridge's ADD (leases %v, ports %q): the check below would prove nothing", c.leases(), c.ports())
	}
	if left, _ := filepath.Glob(filepath.Join(privateCNICache(t), "intents", "*")); len(left) != 1 {
		t.Errorf("intents of the ADD under way: %v, want one", left)
	}
	e.mustLkc("delete", "-f", id)
	c.assertReleased("")
	if left, _ := filepath.Glob(filepath.Join(privateCNICache(t), "intents", "*")); len(left) > 0 {
		t.Errorf("intents left after the delete's DEL: %v", left)
	}
}

// TestNetworkCreateCrashDeleteFirewall kills lkc while ADD runs after
// the firewall and portmap plugins have added their rules for the
// container's address. libcni caches no result for an ADD that never
// ended, and the firewall plugin removes only the rules of the
// addresses its DEL's prevResult names: `delete -f` must still remove
// them all.
func TestNetworkCreateCrashDeleteFirewall(t *testing.T) {
	e := newEnv(t)
	becomeSubreaper(t)
	plugins := installPlugin(t, "lkc-test-hang", hangPlugin)
	c := newCNINet(e, `{"type":"portmap","capabilities":{"portMappings":true}},{"type":"firewall"},{"type":"lkc-test-hang"}`)
	id := e.id()
	b := e.bundle([]string{"true"}, c.annotate("org.lkc.ports", fmt.Sprintf("%d:80", freeHostPort(t))))
	cmd := exec.Command(e.bin, "--root", e.root, "run", "--bundle", b, id)
	pidFile := filepath.Join(plugins, "hang.pid")
	startUntil(t, cmd, pidFile, "the hanging plugin", func() string { return "" })
	cmd.Process.Kill()
	cmd.Wait()
	if b, err := os.ReadFile(pidFile); err == nil {
		exec.Command("kill", "-9", strings.TrimSpace(string(b))).Run()
	}
	leased := c.leases()
	if len(leased) != 2 {
		t.Fatalf("leases after the bridge's ADD: %v, want an IPv4 and an IPv6 one", leased)
	}
	t.Cleanup(func() { dropRulesNaming(leased) })
	for _, ip := range leased {
		if len(rulesNaming(ip+"/")) == 0 {
			t.Fatalf("no rule for %s after the firewall's ADD: the check below would prove nothing", ip)
		}
	}
	e.mustLkc("delete", "-f", id)
	for _, ip := range leased {
		c.assertReleased(ip)
	}
	e.assertIDGone(id)
}

// slowPlugin is a CNI plugin whose ADD adds its "rule" (a file beside
// it) a second after it starts, and whose DEL removes it.
const slowPlugin = `#!/bin/sh
dir=$(dirname "$0")
case "$CNI_COMMAND" in
ADD) echo $$ > "$dir/slow.pid"; sleep 1; echo added > "$dir/slow.rule"; echo '{"cniVersion":"1.0.0"}' ;;
DEL) rm -f "$dir/slow.rule" ;;
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
esac
exit 0
`

// TestNetworkDeleteWaitsForOrphanAdd: a plugin outlives the lkc create
// that ran it when that lkc is killed, and goes on with its ADD. The
// delete -f that follows must wait for it before DEL: run first, its
// DEL would find nothing to remove, and the ADD would then add what no
// DEL ever removes.
func TestNetworkDeleteWaitsForOrphanAdd(t *testing.T) {
	e := newEnv(t)
	becomeSubreaper(t)
	plugins := installPlugin(t, "lkc-test-slow", slowPlugin)
	c := newCNINet(e, `{"type":"lkc-test-slow"}`)
	id := e.id()
	cmd := exec.Command(e.bin, "--root", e.root, "run", "--bundle", e.bundle([]string{"true"}, c.annotate()), id)
	pidFile := filepath.Join(plugins, "slow.pid")
	startUntil(t, cmd, pidFile, "the slow plugin", func() string { return "" })
	cmd.Process.Kill()
	cmd.Wait()
	e.mustLkc("delete", "-f", id)
	// The orphan is a child of this subreaper: wait until it is gone.
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	for deadline := time.Now().Add(settle); syscall.Kill(pid, 0) == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
	}
	if _, err := os.Stat(filepath.Join(plugins, "slow.rule")); err == nil {
		t.Errorf("the ADD that outlived lkc added its rule after the delete's DEL")
	}
	e.assertIDGone(id)
	c.assertReleased("")
}

// dropRulesNaming deletes the filter table's rules that name one of the
// addresses, which a failing test may leave in the host's shared chains.
func dropRulesNaming(addrs []string) {
	for _, ip := range addrs {
		cmd := "iptables"
		if strings.Contains(ip, ":") {
			cmd = "ip6tables"
		}
		for _, r := range rulesNaming(ip + "/") {
			if f := strings.Fields(r); len(f) > 1 && f[0] == "-A" {
				exec.Command(cmd, append([]string{"-D"}, f[1:]...)...).Run()
			}
		}
	}
}

// failPlugin fails both ADD and DEL.
const failPlugin = `#!/bin/sh
case "$CNI_COMMAND" in
ADD|DEL) echo '{"cniVersion":"1.0.0","code":999,"msg":"lkc test: refused"}'; exit 1 ;;
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
esac
exit 0
`

// TestNetworkUndoDelFails: ADD fails in a plugin whose DEL fails too, so
// create's undo cannot run DEL through. Create must still fail in one line
// that says so, and leave no state directory and no namespace pin (which
// kept delete from ever removing the directory). The bridge masquerades
// nothing here: its rules, which the failed DEL leaves, would be the
// host's.
func TestNetworkUndoDelFails(t *testing.T) {
	e := newEnv(t)
	installPlugin(t, "lkc-test-fail", failPlugin)
	c := newCNINet(e, `{"type":"lkc-test-fail"}`)
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[
 {"type":"bridge","bridge":%q,"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":%q}]]}},
 {"type":"lkc-test-fail"}]}`, c.name, c.bridge, c.ipamDir, c.subnet)
	if err := os.WriteFile(filepath.Join(c.dir, c.name+".conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	b := e.bundle([]string{"true"}, c.annotate())
	id := e.id()
	e.failLkc(`network `+c.name+`: plugin type="lkc-test-fail" failed \(add\): lkc test: refused \(undoing it failed, leases or rules of the networks may be left: network `+c.name+`: plugin type="lkc-test-fail" failed \(delete\)`,
		"run", "--bundle", b, id)
	e.assertIDGone(id)
	if m := mountsUnder(t, e.root); len(m) > 0 {
		t.Errorf("mounts left under the root: %v", m)
	}
}

// installPlugin puts script in a directory of its own as the CNI plugin
// name, found before Debian's plugins (LKC_CNI_PATH) for the rest of the
// test, and returns the directory.
func installPlugin(t *testing.T, name, script string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LKC_CNI_PATH", dir+":/usr/lib/cni")
	return dir
}

// TestNetworkDeleteUnrecordedRestore: a restore runs ADD beside its first
// steps, so an lkc restore killed early leaves a state directory with the
// network record and the pinned namespace but no state.json. Built here by
// hand from a real ADD (a container's, whose processes, cgroups and record
// are then removed): a delete must run DEL from the record, giving back
// the lease, veth and rules, and remove the directory.
func TestNetworkDeleteUnrecordedRestore(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "100"}, c.annotate()), id)
	addr := e.addr(id)
	if len(c.leases()) == 0 || c.ports() == "" {
		t.Fatalf("no lease or veth after ADD (leases %v, ports %q): the check below would prove nothing", c.leases(), c.ports())
	}
	e.mustLkc("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	for _, dir := range cgroupDirs(id) {
		removeCgroupDir(t, dir)
	}
	dir := filepath.Join(e.root, id)
	if err := os.Remove(filepath.Join(dir, "state.json")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"network.json", "netns"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("the state dir has no %s: the check below would prove nothing: %v", name, err)
		}
	}
	e.mustLkc("delete", id)
	c.assertReleased(addr)
	e.assertIDGone(id)
}

// removeCgroupDir removes an empty cgroup directory, waiting for the
// kernel to let go of the tasks that just died in it.
func removeCgroupDir(t *testing.T, dir string) {
	t.Helper()
	for deadline := time.Now().Add(settle); ; time.Sleep(20 * time.Millisecond) {
		err := os.Remove(dir)
		if err == nil || os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("removing cgroup %s: %v", dir, err)
		}
	}
}
