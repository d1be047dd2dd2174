package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// natRulesNaming lists the lines of `iptables -t nat -S` and
// `ip6tables -t nat -S` that name s (a chain's declaration, -N, among
// them).
func natRulesNaming(s string) (v4, v6 []string) {
	for _, cmd := range []string{"iptables", "ip6tables"} {
		out, _ := exec.Command(cmd, "-w", "-t", "nat", "-S").Output()
		for _, l := range strings.Split(string(out), "\n") {
			if !strings.Contains(l, s) {
				continue
			}
			if cmd == "iptables" {
				v4 = append(v4, l)
			} else {
				v6 = append(v6, l)
			}
		}
	}
	return v4, v6
}

// dropNatChain removes chain and the POSTROUTING rules that jump to it,
// which a failing test may leave in the host's nat tables.
func dropNatChain(chain string) {
	for _, cmd := range []string{"iptables", "ip6tables"} {
		script := cmd + ` -w -t nat -S POSTROUTING | grep -- '-j ` + chain + `$' | sed 's/^-A/-D/' | while read -r r; do eval "` + cmd + ` -w -t nat $r"; done; ` +
			cmd + ` -w -t nat -F ` + chain + `; ` + cmd + ` -w -t nat -X ` + chain
		exec.Command("sh", "-c", script).Run()
	}
}

// TestNetworkGCMasqAfterReboot: a container of a masquerading network
// loses its state directory and namespace as at a reboot without the
// rules going (the bridge plugin, 1.1.1, tears its masquerade down only
// for the addresses it finds in the namespace). gc removes the
// container's masquerade chain and POSTROUTING jumps in iptables and
// ip6tables, and leaves a live container's.
func TestNetworkGCMasqAfterReboot(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	live, gone := e.id(), e.id()
	for _, id := range []string{live, gone} {
		e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "100"}, c.annotate()), id)
	}
	liveChain, goneChain := masqChain(t, e.addr(live)), masqChain(t, e.addr(gone))
	t.Cleanup(func() { dropNatChain(goneChain) })
	for _, chain := range []string{liveChain, goneChain} {
		if v4, v6 := natRulesNaming(chain); len(v4) < 2 || len(v6) < 2 {
			t.Fatalf("masquerade chain %s: iptables %q, ip6tables %q: want it and a jump in both", chain, v4, v6)
		}
	}
	goneAddr := e.addr(gone)
	e.loseStateDir(gone, true)
	if v4, v6 := natRulesNaming(goneChain); len(v4) == 0 || len(v6) == 0 {
		t.Fatalf("the lost container's chain %s went before gc: the check below would prove nothing", goneChain)
	}
	want := "network gc: removed 1 stale attachments (" + c.name + "/eth0 of " + filepath.Join(e.root, gone) + "), kept 1 of live containers\n"
	if out := e.mustLkc("network", "gc"); out != want {
		t.Errorf("gc printed %q, want %q", out, want)
	}
	if v4, v6 := natRulesNaming(goneChain); len(v4) > 0 || len(v6) > 0 {
		t.Errorf("the lost container's masquerade chain %s is left: iptables %q, ip6tables %q", goneChain, v4, v6)
	}
	if v4, v6 := natRulesNaming(liveChain); len(v4) < 2 || len(v6) < 2 {
		t.Errorf("the live container's masquerade chain %s was touched: iptables %q, ip6tables %q", liveChain, v4, v6)
	}
	if c.leaseOf(goneAddr) {
		t.Errorf("the lease of %s is left: %v", goneAddr, c.leases())
	}
	liveAddr := e.addr(live)
	e.mustLkc("delete", "-f", live)
	c.assertReleased(liveAddr)
}

// gatedBridge wraps Debian's bridge plugin: its ADD writes its pid and
// waits for the file "go" beside it (30 s at most) before it becomes the
// bridge, so a test can kill lkc before any of the ADD is done and know
// the bridge then does all of it.
const gatedBridge = `#!/bin/sh
dir=$(dirname "$0")
if [ "$CNI_COMMAND" = ADD ]; then
	echo $$ > "$dir/bridge.pid"
	i=0
	while [ ! -e "$dir/go" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
fi
exec /usr/lib/cni/bridge
`

// waitChildGone reaps pid, a child of this subreaper, once it exits.
func waitChildGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(settle); syscall.Kill(pid, 0) == nil; time.Sleep(20 * time.Millisecond) {
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not end", pid)
		}
	}
}

// TestNetworkGCCreateKilledDuringAdd: lkc create is killed while the
// bridge's ADD runs (held at a gate until then), so libcni caches nothing of the attachment, and the
// container's state directory and namespace are then lost as at a
// reboot. gc finds the attachment by the intent create wrote before ADD
// and runs its DEL: the lease, the masquerade chain and the other rules
// go, and so does the intent.
func TestNetworkGCCreateKilledDuringAdd(t *testing.T) {
	e := newEnv(t)
	becomeSubreaper(t)
	plugins := pluginsWithout(t, "bridge")
	if err := os.WriteFile(filepath.Join(plugins, "bridge"), []byte(gatedBridge), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LKC_CNI_PATH", plugins)
	c := newCNINet(e, "")
	cache := privateCNICache(t)
	id := e.id()
	dir := filepath.Join(e.root, id)
	cmd := exec.Command(e.bin, "--root", e.root, "create", "--bundle", e.bundle([]string{"sleep", "100"}, c.annotate()), id)
	pidFile := filepath.Join(plugins, "bridge.pid")
	startUntil(t, cmd, pidFile, "the gated bridge", func() string { return "" })
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if err := os.WriteFile(filepath.Join(plugins, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	waitChildGone(t, pid)
	for _, p := range processesIn(id) {
		syscall.Kill(p, syscall.SIGKILL)
		waitChildGone(t, p)
	}
	for _, d := range cgroupDirs(id) {
		removeCgroupDir(t, d)
	}
	leased := c.leases()
	t.Cleanup(func() {
		dropRulesNaming(leased)
		v4, _ := natRulesNaming(`\"` + c.name + `\"`)
		for _, r := range v4 {
			if m := masqJumpRE.FindStringSubmatch(r); m != nil {
				dropNatChain(m[1])
			}
		}
	})
	if len(leased) != 2 || c.ports() == "" {
		t.Fatalf("leases %v, veths %q after the killed create's ADD: the check below would prove nothing", leased, c.ports())
	}
	if v4, v6 := natRulesNaming(`\"` + c.name + `\"`); len(v4) == 0 || len(v6) == 0 {
		t.Fatalf("no masquerade rule of %s after the ADD (iptables %q, ip6tables %q): the check below would prove nothing", c.name, v4, v6)
	}
	if cached, _ := filepath.Glob(filepath.Join(cache, "results", "*")); len(cached) > 0 {
		t.Fatalf("libcni cached %v of an ADD that never ended", cached)
	}
	if err := unix.Unmount(filepath.Join(dir, "netns"), unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dir)

	want := "network gc: removed 1 stale attachments (" + c.name + "/eth0 of " + dir + "), kept 0 of live containers\n"
	if out := e.mustLkc("network", "gc"); out != want {
		t.Errorf("gc printed %q, want %q", out, want)
	}
	c.assertReleased("")
	if left, _ := filepath.Glob(filepath.Join(cache, "intents", "*")); len(left) > 0 {
		t.Errorf("intents left after gc: %v", left)
	}
	if out := e.mustLkc("network", "gc"); !strings.HasPrefix(out, "network gc: removed 0 stale attachments") {
		t.Errorf("a second gc printed %q", out)
	}
}
