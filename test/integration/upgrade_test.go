package integration

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// upgradeState is what the first boot of the kernel-upgrade test leaves
// on the persistent disk for the second.
type upgradeState struct {
	Kernel       string `json:"kernel"`
	Counter      string `json:"counter"`
	Server       string `json:"server"`
	Client       string `json:"client"`
	Term         string `json:"term"`
	Count        int    `json:"count"`   // the counter at the checkpoint
	Replies      int    `json:"replies"` // the client's last echoed number then
	CheckpointMS int64  `json:"checkpointMs"`
}

// upgradeNetns is the network namespace the server and its client share,
// made again after the reboot as a host's network set-up would be.
const upgradeNetns = "lkc-upgrade"

// TestKernelUpgrade is the kernel-upgrade test of scripts/upgrade-test:
// LKC_UPGRADE_PHASE=1 starts a counter, a TCP echo server with a client
// (another container) holding an established connection, and a shell on
// a pty, all with their files on the persistent disk LKC_UPGRADE_DIR,
// and runs checkpoint --all; the VM then boots again (another kernel when
// there is one) and LKC_UPGRADE_PHASE=2 runs restore --all and checks that
// the counter goes on, the connection carries data and the shell kept its
// state. Skipped unless LKC_UPGRADE_PHASE is set.
func TestKernelUpgrade(t *testing.T) {
	phase, dir := os.Getenv("LKC_UPGRADE_PHASE"), os.Getenv("LKC_UPGRADE_DIR")
	if phase == "" || dir == "" {
		t.Skip("run by scripts/upgrade-test (LKC_UPGRADE_PHASE, LKC_UPGRADE_DIR)")
	}
	requireCriu(t)
	e := newEnv(t)
	switch phase {
	case "1":
		upgradeBefore(t, e, dir)
	case "2":
		upgradeAfter(t, e, dir)
	default:
		t.Fatalf("LKC_UPGRADE_PHASE=%s: want 1 or 2", phase)
	}
}

func upgradeNetnsUp(t *testing.T) string {
	t.Helper()
	for _, args := range [][]string{{"netns", "add", upgradeNetns}, {"-n", upgradeNetns, "link", "set", "lo", "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", upgradeNetns).Run() })
	return "/run/netns/" + upgradeNetns
}

// diskRootfs copies the busybox rootfs onto the persistent disk.
func diskRootfs(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if out, err := exec.Command("cp", "-a", rootfs, p).CombinedOutput(); err != nil {
		t.Fatalf("copying the rootfs: %v: %s", err, out)
	}
	return p
}

// clientScript sends a growing number over its connection every 0.2 s
// and writes what comes back to /replies.
const clientScript = `i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done | nc 127.0.0.1 5000 > /replies`

func upgradeBefore(t *testing.T, e *env, dir string) {
	ns := upgradeNetnsUp(t)
	var st upgradeState
	st.Kernel = kernelOf(t)
	counterRoot, clientRoot, shared := diskRootfs(t, dir, "rootfs-counter"), diskRootfs(t, dir, "rootfs-client"), diskRootfs(t, dir, "rootfs")
	st.Counter = e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sh", "-c", counterScript}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = counterRoot, false
	}), st.Counter)
	st.Server = e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"nc", "-l", "-p", "5000", "-e", "cat"}, func(s *specs.Spec) {
		s.Root.Path = shared
		joinNetns(ns)(s)
	}), st.Server)
	waitListening(t, e, st.Server, 5000)
	st.Client = e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sh", "-c", clientScript}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = clientRoot, false
		joinNetns(ns)(s)
	}), st.Client)
	var master *os.File
	st.Term, master = e.createWithConsole([]string{"sh"}, func(s *specs.Spec) { s.Root.Path = shared })
	e.mustLkc("start", st.Term)
	master.Write([]byte("X=kept; echo ready-$((1+1))\n"))
	readUntil(t, master, "ready-2")
	waitCount(t, counterRoot, 3)
	waitReplies(t, clientRoot, 3)

	start := time.Now()
	out := e.mustLkc("checkpoint", "--all", "--tcp-established", "--image-dir", filepath.Join(dir, "images"))
	st.CheckpointMS = time.Since(start).Milliseconds()
	t.Logf("checkpoint --all on %s in %d ms:\n%s", st.Kernel, st.CheckpointMS, out)
	st.Count, st.Replies = readCount(t, counterRoot), lastReply(t, clientRoot)
	data, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(dir, "upgrade.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func upgradeAfter(t *testing.T, e *env, dir string) {
	data, err := os.ReadFile(filepath.Join(dir, "upgrade.json"))
	if err != nil {
		t.Fatalf("the first boot's record: %v", err)
	}
	var st upgradeState
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	e.ids = append(e.ids, st.Counter, st.Server, st.Client, st.Term)
	upgradeNetnsUp(t)
	consoles := t.TempDir()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(consoles, st.Term), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	start := time.Now()
	out := e.mustLkc("restore", "--all", "--image-dir", filepath.Join(dir, "images"), "--console-dir", consoles)
	t.Logf("restore --all on %s (dumped on %s) in %d ms (checkpoint --all took %d ms):\n%s",
		kernelOf(t), st.Kernel, time.Since(start).Milliseconds(), st.CheckpointMS, out)

	counterRoot := filepath.Join(dir, "rootfs-counter")
	if n := waitCount(t, counterRoot, st.Count+2); n > st.Count+50 {
		t.Errorf("the counter restarted: %d after %d", n, st.Count)
	}
	t.Cleanup(func() {
		if t.Failed() {
			upgradeDiagnose(t, e, dir, st)
		}
	})
	// The client goes on numbering over the same connection: replies
	// beyond the last one before the reboot.
	clientRoot := filepath.Join(dir, "rootfs-client")
	waitReplies(t, clientRoot, st.Replies+3)
	master := recvMaster(t, l)
	master.Write([]byte("echo $X-$((2+3))\n"))
	readUntil(t, master, "kept-5")
	for _, id := range []string{st.Counter, st.Server, st.Client, st.Term} {
		e.mustLkc("delete", "--force", id)
	}
}

func kernelOf(t *testing.T) string {
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// waitListening waits until container id's init listens on TCP port.
func waitListening(t *testing.T, e *env, id string, port int) {
	t.Helper()
	pid := int(e.state(id)["pid"].(float64))
	local := ":" + strings.ToUpper(strconv.FormatInt(int64(port), 16))
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		// IPv4 or IPv6 (busybox nc listens on ::): state 0A is LISTEN.
		for _, f := range []string{"tcp", "tcp6"} {
			data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/" + f)
			for _, line := range strings.Split(string(data), "\n") {
				if fl := strings.Fields(line); len(fl) > 3 && strings.HasSuffix(fl[1], local) && fl[3] == "0A" {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("container %s never listened on port %d", id, port)
}

// lastReply is the last number the client got back, 0 before any.
func lastReply(t *testing.T, root string) int {
	data, _ := os.ReadFile(filepath.Join(root, "replies"))
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[len(f)-1])
	return n
}

func waitReplies(t *testing.T, root string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for lastReply(t, root) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the client's replies never reached %d (at %d)", n, lastReply(t, root))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// upgradeDiagnose logs what a failed second boot needs looked at: the
// connection's sockets, the containers' processes, the end of the
// restore logs and the kernel's.
func upgradeDiagnose(t *testing.T, e *env, dir string, st upgradeState) {
	run := func(name string, args ...string) {
		out, err := exec.Command(name, args...).CombinedOutput()
		t.Logf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	run("ip", "netns", "exec", upgradeNetns, "ss", "-tanoi")
	for _, id := range []string{st.Server, st.Client} {
		r := e.lkc("ps", id)
		t.Logf("lkc ps %s: %v", id, r)
		run("tail", "-n", "15", filepath.Join(dir, "images", id, "restore.log"))
	}
	run("tail", "-c", "300", filepath.Join(dir, "rootfs-client", "replies"))
	run("dmesg", "--notime")
}
