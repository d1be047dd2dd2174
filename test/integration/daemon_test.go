package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/hostconf"
)

// daemonEnv is one test's lkc daemon: its run directory beneath the
// test's temp dir (LKC_DAEMON_DIR, LKC_CONFIG set for every lkc the test
// runs), stopped in t.Cleanup.
type daemonEnv struct {
	*env
	dir string
}

// daemonStatus is `lkc daemon status --json`.
type daemonStatus struct {
	Build      string   `json:"build"`
	HolderPid  int      `json:"holderPid"`
	WorkerPid  int      `json:"workerPid"`
	Held       []string `json:"held"`
	Containers []struct {
		ID   string `json:"id"`
		Slot int    `json:"slot"`
		Gen  uint64 `json:"gen"`
	} `json:"containers"`
}

func newDaemonEnv(t *testing.T) *daemonEnv {
	e := newEnv(t)
	d := &daemonEnv{env: e, dir: filepath.Join(t.TempDir(), "lkcd")}
	t.Setenv("LKC_DAEMON_DIR", d.dir)
	t.Setenv("LKC_CONFIG", filepath.Join(t.TempDir(), "lkc.conf"))
	t.Cleanup(d.stop)
	return d
}

// start runs `lkc daemon --detach`.
func (d *daemonEnv) start() daemonStatus {
	d.t.Helper()
	d.mustLkc("daemon", "--detach")
	return d.status()
}

func (d *daemonEnv) status() daemonStatus {
	d.t.Helper()
	var s daemonStatus
	out := d.mustLkc("daemon", "status", "--json")
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		d.t.Fatalf("daemon status: %v: %q", err, out)
	}
	return s
}

// stop stops the daemon; when that fails, it kills the processes of this
// test's daemon (found by their LKC_DAEMON_DIR), stopped first so that
// neither restarts the other.
func (d *daemonEnv) stop() {
	if d.t.Failed() {
		log, _ := os.ReadFile(filepath.Join(d.dir, "daemon.log"))
		d.t.Logf("daemon.log (last 3000 bytes):\n%s", log[max(0, len(log)-3000):])
	}
	r := d.lkc("daemon", "stop")
	pids := d.processes()
	if len(pids) == 0 {
		return
	}
	d.t.Errorf("daemon processes %v left after lkc daemon stop (%v)", pids, r)
	var fds []int
	for _, p := range pids {
		if fd, err := unix.PidfdOpen(p, 0); err == nil {
			unix.PidfdSendSignal(fd, unix.SIGSTOP, nil, 0)
			fds = append(fds, fd)
		}
	}
	for _, fd := range fds {
		unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		unix.Close(fd)
	}
}

// processes lists the pids whose environment names this daemon's dir.
func (d *daemonEnv) processes() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	want := "LKC_DAEMON_DIR=" + d.dir
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(cmd), "daemon\x00--") && strings.Contains("\x00"+string(env)+"\x00", "\x00"+want+"\x00") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// controlInode is the inode of the listening control socket the holder
// keeps: the same inode across restarts proves it is the same socket.
func (d *daemonEnv) controlInode(holder int) string {
	d.t.Helper()
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", holder))
	var socks []string
	for _, f := range fds {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", holder, f.Name()))
		if strings.HasPrefix(l, "socket:") {
			socks = append(socks, l)
		}
	}
	// The holder keeps the control socket and its worker connections;
	// the listener is the socket /proc/net/unix lists with our path.
	unixTable, _ := os.ReadFile("/proc/net/unix")
	for _, line := range strings.Split(string(unixTable), "\n") {
		f := strings.Fields(line)
		if len(f) == 8 && f[7] == filepath.Join(d.dir, "control.sock") {
			for _, s := range socks {
				if s == "socket:["+f[6]+"]" {
					return s
				}
			}
		}
	}
	d.t.Fatalf("holder %d keeps no control socket (its sockets: %v)", holder, socks)
	return ""
}

func kill9(t *testing.T, pid int) {
	t.Helper()
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
}

func TestDaemonWorkerKilledIsRestarted(t *testing.T) {
	d := newDaemonEnv(t)
	s := d.start()
	sock := d.controlInode(s.HolderPid)
	for i := 0; i < 3; i++ {
		kill9(t, s.WorkerPid)
		// No wait: the connection queues on the socket the holder keeps
		// until the next worker serves it.
		n := d.status()
		if n.WorkerPid == s.WorkerPid || n.HolderPid != s.HolderPid {
			t.Fatalf("after kill -9 of worker %d: %+v", s.WorkerPid, n)
		}
		if got := d.controlInode(n.HolderPid); got != sock {
			t.Fatalf("control socket %s became %s", sock, got)
		}
		s = n
	}
}

func TestDaemonHolderKilledIsRestarted(t *testing.T) {
	d := newDaemonEnv(t)
	s := d.start()
	sock := d.controlInode(s.HolderPid)
	kill9(t, s.HolderPid)
	deadline := time.Now().Add(10 * time.Second)
	n := d.status()
	for n.HolderPid == s.HolderPid {
		if time.Now().After(deadline) {
			t.Fatalf("no new holder 10 s after kill -9 of holder %d", s.HolderPid)
		}
		time.Sleep(20 * time.Millisecond)
		n = d.status()
	}
	if got := d.controlInode(n.HolderPid); got != sock {
		t.Fatalf("the new holder keeps socket %s, want the worker's deposit %s", got, sock)
	}
	// The new holder supervises the worker: killing it brings a new one.
	kill9(t, n.WorkerPid)
	if m := d.status(); m.WorkerPid == n.WorkerPid || m.HolderPid != n.HolderPid {
		t.Fatalf("after kill -9 of worker %d under the new holder: %+v", n.WorkerPid, m)
	}
}

func TestDaemonUpgradeKeepsFds(t *testing.T) {
	d := newDaemonEnv(t)
	second := buildSecondLkc(t)
	s := d.start()
	sock := d.controlInode(s.HolderPid)
	d.failLkc(`upgrade to /bin/true: .*does not answer as lkc`, "daemon", "upgrade", "--exe", "/bin/true")
	if n := d.status(); n.WorkerPid != s.WorkerPid {
		t.Fatalf("a refused upgrade replaced the worker: %+v", n)
	}
	d.mustLkc("daemon", "upgrade", "--exe", second)
	// Atomic for clients: every connection after the answer reaches the
	// new worker, none the draining old one (which would answer with its
	// pid or hang up).
	for i := 0; i < 20; i++ {
		rs := rawControl(t, d.dir, `{"v":1,"op":"hello","seq":1,"body":{"versions":[1]}}`, `{"v":1,"op":"status","seq":2}`)
		body, _ := rs[1]["body"].(map[string]any)
		if pid, _ := body["workerPid"].(float64); pid == 0 || int(pid) == s.WorkerPid {
			t.Fatalf("connection %d after the upgrade answered by worker %v (old %d): %v", i, body["workerPid"], s.WorkerPid, rs[1])
		}
	}
	n := d.status()
	if n.Build != "upgrade-test" || n.HolderPid != s.HolderPid || n.WorkerPid == s.WorkerPid {
		t.Fatalf("after upgrade: %+v, want build upgrade-test, holder %d, a new worker", n, s.HolderPid)
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", n.HolderPid)); exe != second {
		t.Errorf("holder runs %s, want %s", exe, second)
	}
	if got := d.controlInode(n.HolderPid); got != sock {
		t.Fatalf("control socket %s became %s across the upgrade", sock, got)
	}
	// The new worker knows which worker drains (its services wait for it
	// before reclaiming what it had read).
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n.WorkerPid))
	if want := fmt.Sprintf("--predecessor=%d", s.WorkerPid); !strings.Contains(string(cmdline), want) {
		t.Errorf("new worker's command line %q lacks %s", cmdline, want)
	}
	// The old worker drains and exits: after the answer (which comes
	// first), so its exit is waited for.
	waitFor(t, func() bool {
		if unix.Kill(s.WorkerPid, 0) != nil {
			return true
		}
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.WorkerPid))
		return strings.Contains(string(st), ") Z")
	}, fmt.Sprintf("old worker %d to exit after the upgrade", s.WorkerPid))
	kill9(t, n.WorkerPid)
	if m := d.status(); m.Build != "upgrade-test" {
		t.Errorf("the worker restarted after the upgrade runs build %q", m.Build)
	}
}

// rawControl sends packets on a new control connection and returns the
// answers.
func rawControl(t *testing.T, dir string, packets ...string) []map[string]any {
	t.Helper()
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: filepath.Join(dir, "control.sock"), Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []map[string]any
	buf := make([]byte, 128<<10)
	for _, p := range packets {
		if _, err := c.Write([]byte(p)); err != nil {
			t.Fatalf("writing %.40q: %v", p, err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(buf)
		if err != nil || n == 0 {
			t.Fatalf("no answer to %.40q: %v", p, err)
		}
		var m map[string]any
		if err := json.Unmarshal(buf[:n], &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func TestDaemonControlProtocolRefusals(t *testing.T) {
	setpriv := requireSetpriv(t)
	d := newDaemonEnv(t)
	d.start()
	hello := `{"v":1,"op":"hello","seq":1,"body":{"versions":[1]}}`
	for _, tc := range []struct {
		name, class, msg string
		packets          []string
	}{
		{"unknown version", "version", "speaks protocol 1, the client offers [2]", []string{`{"v":2,"op":"hello","seq":1,"body":{"versions":[2]}}`}},
		{"oversized message", "invalid", "larger than 65536 bytes", []string{hello, `{"v":1,"op":"status","seq":2,"body":"` + strings.Repeat("x", 70000) + `"}`}},
		{"unknown operation", "not-supported", `unknown operation "dance"`, []string{hello, `{"v":1,"op":"dance","seq":2}`}},
	} {
		rs := rawControl(t, d.dir, tc.packets...)
		last := rs[len(rs)-1]
		if last["class"] != tc.class || !strings.Contains(fmt.Sprint(last["error"]), tc.msg) {
			t.Errorf("%s: answer %v, want class %s and %q", tc.name, last, tc.class, tc.msg)
		}
	}
	// A peer other than root: the socket is 0600 in a 0700 directory, so
	// open both up (an operator's mistake) to reach SO_PEERCRED's check.
	for p := d.dir; p != "/tmp" && p != "/"; p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	os.Chmod(filepath.Join(d.dir, "control.sock"), 0o666)
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", d.bin, "daemon", "status")
	out, err := cmd.CombinedOutput()
	msg := strings.TrimSpace(string(out))
	if err == nil || !strings.Contains(msg, "serves uid 0 only") || strings.Contains(msg, "\n") {
		t.Errorf("status as nobody: %v, %q; want one line saying the daemon serves uid 0 only", err, msg)
	}
	if s := d.status(); s.WorkerPid == 0 {
		t.Error("the daemon stopped serving after a refused peer")
	}
}

func requireSetpriv(t *testing.T) string {
	p, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	return p
}

func TestDaemonAutostartOnceWhenTwoRace(t *testing.T) {
	d := newDaemonEnv(t)
	// Two creates asking for a daemon feature at once: each asks the
	// daemon, starting it; one daemon serves both.
	policy := func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.oom-policy": "kill-largest"}
	}
	ids := []string{d.id(), d.id()}
	bundles := []string{d.bundle([]string{"sleep", "1000"}, policy), d.bundle([]string{"sleep", "1000"}, policy)}
	results := make([]result, 2)
	var wg sync.WaitGroup
	for i := range ids {
		t.Cleanup(func() { d.lkc("delete", "--force", ids[i]) })
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = d.lkc("create", "--bundle", bundles[i], ids[i])
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("create %s: %v", ids[i], r)
		}
	}
	if pids := d.processes(); len(pids) != 2 {
		t.Errorf("daemon processes %v, want one holder and one worker", pids)
	}
	if s := d.status(); len(s.Containers) != 2 {
		t.Errorf("the daemon serves %+v, want both containers", s.Containers)
	}
}

func TestDaemonNotStartedWhenAutostartOff(t *testing.T) {
	d := newDaemonEnv(t)
	if err := os.WriteFile(os.Getenv("LKC_CONFIG"), []byte("daemon.autostart = false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := d.id()
	b := d.bundle([]string{"true"}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.proc": "virtual"}
	})
	d.failLkc(`^lkc: create: container `+id+`: org.lkc.proc=virtual needs the lkc daemon: lkc daemon is not running .*daemon.autostart is false \(start it: lkc daemon --detach`, "create", "--bundle", b, id)
	if pids := d.processes(); len(pids) != 0 {
		t.Errorf("a daemon started with autostart off: %v", pids)
	}
	if _, err := os.Stat(filepath.Join(d.root, id)); err == nil {
		t.Errorf("refused create left %s behind", id)
	}
}

func TestDaemonBadConfig(t *testing.T) {
	d := newDaemonEnv(t)
	conf := os.Getenv("LKC_CONFIG")
	if err := os.WriteFile(conf, []byte("# host\ndaemon.autostart = true\nproc.defualt = virtual\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.failLkc(`^lkc: daemon: `+conf+` line 3: proc.defualt: unknown key$`, "daemon", "--detach")
	if _, err := os.Stat(d.dir); err == nil {
		t.Errorf("a refused start made %s", d.dir)
	}
	// A running daemon keeps its configuration on a bad reload.
	os.WriteFile(conf, nil, 0o644)
	d.start()
	os.WriteFile(conf, []byte("proc.default = sometimes\n"), 0o644)
	d.failLkc(`^lkc: daemon: `+conf+` line 1: proc.default: "sometimes": use off or virtual`, "daemon", "reload")
	os.WriteFile(conf, []byte("proc.default = off\n"), 0o644)
	d.mustLkc("daemon", "reload")
	d.status()
	d.failLkc(`^lkc: daemon: unknown daemon command "restart"`, "daemon", "restart")
}

func TestDaemonFailedStartLeavesNothing(t *testing.T) {
	d := newDaemonEnv(t)
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// A file where the registry's directory goes: the worker cannot start.
	if err := os.WriteFile(filepath.Join(d.dir, "slots"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d.failLkc(`^lkc: daemon: lkc daemon did not start: registry: mkdir .*/slots: not a directory \(log: .*daemon.log\)$`, "daemon", "--detach")
	if pids := d.processes(); len(pids) != 0 {
		t.Errorf("a failed start left daemon processes %v", pids)
	}
}

func TestDaemonNotTouchedWithoutFeatures(t *testing.T) {
	d := newDaemonEnv(t)
	id := d.id()
	d.mustLkc("run", "--bundle", d.bundle([]string{"true"}, nil), id)
	if _, err := os.Stat(d.dir); err == nil {
		t.Errorf("a container without daemon features made %s", d.dir)
	}
	if pids := d.processes(); len(pids) != 0 {
		t.Errorf("a container without daemon features started a daemon: %v", pids)
	}
}

func TestDaemonRegistryRebuiltAfterWorkerKill(t *testing.T) {
	d := newDaemonEnv(t)
	s := d.start()
	cl, err := daemonapi.Dial(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	root := t.TempDir()
	for _, id := range []string{"a", "b"} {
		os.Mkdir(filepath.Join(root, id), 0o700)
		if r, err := cl.Adopt(root, id, hostconf.Features{}); err != nil || r.Gen != 1 {
			t.Fatalf("adopt %s: %+v, %v", id, r, err)
		}
	}
	// b's directory goes while the worker is dead: the next worker frees
	// its slot; a survives with its slot.
	os.Remove(filepath.Join(root, "b"))
	kill9(t, s.WorkerPid)
	n := d.status()
	if len(n.Containers) != 1 || n.Containers[0].ID != "a" || n.Containers[0].Slot != 0 {
		t.Fatalf("served after the restart: %+v, want a in slot 0", n.Containers)
	}
	cl2, err := daemonapi.Dial(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	os.Mkdir(filepath.Join(root, "c"), 0o700)
	if r, err := cl2.Adopt(root, "c", hostconf.Features{}); err != nil || r.Slot != 1 || r.Gen != 2 {
		t.Errorf("adopt into b's freed slot: %+v, %v; want slot 1 gen 2", r, err)
	}
	if err := cl2.Release(root, "b", 0); !errors.Is(err, daemonapi.ErrNotExist) {
		t.Errorf("release of a freed container: %v, want not-exist", err)
	}
}

func TestDaemonSIGTERMToHolderStopsBoth(t *testing.T) {
	d := newDaemonEnv(t)
	s := d.start()
	wfd, err := unix.PidfdOpen(s.WorkerPid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(wfd)
	hfd, err := unix.PidfdOpen(s.HolderPid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(hfd)
	if err := unix.Kill(s.HolderPid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, fd := range []int{wfd, hfd} {
		if n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 10000); n != 1 {
			t.Fatalf("holder %d and worker %d still run 10 s after SIGTERM to the holder", s.HolderPid, s.WorkerPid)
		}
	}
	if pids := d.processes(); len(pids) != 0 {
		t.Errorf("daemon processes %v after SIGTERM to the holder", pids)
	}
}

func TestDaemonBadAnnotation(t *testing.T) {
	d := newDaemonEnv(t)
	id := d.id()
	b := d.bundle([]string{"true"}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.proc": "yes"}
	})
	d.failLkc(`^lkc: create: annotation org.lkc.proc="yes": use off or virtual$`, "create", "--bundle", b, id)
	if _, err := os.Stat(filepath.Join(d.root, id)); err == nil {
		t.Errorf("refused create left %s behind", id)
	}
	if pids := d.processes(); len(pids) != 0 {
		t.Errorf("a bad annotation started a daemon: %v", pids)
	}
}

func TestDaemonClientDoesNotHangOnFailingWorkers(t *testing.T) {
	d := newDaemonEnv(t)
	s := d.start()
	// Workers cannot start while slots is a file: the holder keeps
	// restarting them (backing off) and keeps the control socket, so a
	// client's connection waits in its backlog.
	slots := filepath.Join(d.dir, "slots")
	if err := os.RemoveAll(slots); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(slots, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	kill9(t, s.WorkerPid)
	start := time.Now()
	d.failLkc(`^lkc: daemon: hello: lkc daemon did not answer within 10s \(its log says why\)$`, "daemon", "status")
	if el := time.Since(start); el > 20*time.Second {
		t.Errorf("status took %v to give up", el)
	}
	// Repaired, the next worker serves the same socket.
	os.Remove(slots)
	deadline := time.Now().Add(30 * time.Second)
	for d.lkc("daemon", "status").code != 0 {
		if time.Now().After(deadline) {
			t.Fatal("no worker serves 30 s after the repair")
		}
	}
}

func TestDaemonStopsWhenItsDirectoryGoes(t *testing.T) {
	d := newDaemonEnv(t)
	s := d.start()
	fds := make([]int, 0, 2)
	for _, pid := range []int{s.WorkerPid, s.HolderPid} {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		fds = append(fds, fd)
	}
	if err := os.RemoveAll(d.dir); err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 10000); n != 1 {
			t.Fatalf("holder %d and worker %d still run 10 s after their directory was removed", s.HolderPid, s.WorkerPid)
		}
	}
}

// A client that sends requests and never reads the answers fills its
// receive queue and leaves the worker's answer blocked; `lkc daemon
// stop` must still end the worker rather than wait for that answer
// forever.
func TestDaemonStopsDespiteClientNotReading(t *testing.T) {
	d := newDaemonEnv(t)
	s := d.start()
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: filepath.Join(d.dir, "control.sock"), Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(`{"v":1,"op":"hello","seq":1,"body":{"versions":[1]}}`))
	// Send until the worker stops taking requests: its answer is stuck.
	c.SetWriteDeadline(time.Now().Add(time.Second))
	for i := 2; i < 100000; i++ {
		if _, err := c.Write([]byte(fmt.Sprintf(`{"v":1,"op":"status","seq":%d}`, i))); err != nil {
			break
		}
	}
	if r := d.lkc("daemon", "stop"); r.code != 0 {
		t.Fatalf("daemon stop with a client not reading: %v", r)
	}
	if pids := d.processes(); len(pids) != 0 {
		t.Errorf("daemon processes %v (worker %d) still run after lkc daemon stop", pids, s.WorkerPid)
	}
}

// TestDaemonSurvivesConnectionFlood: clients that hold more connections
// than the worker may have fds make accept fail with EMFILE; the worker
// must wait for fds rather than exit, and serve again once they go.
func TestDaemonSurvivesConnectionFlood(t *testing.T) {
	d := newDaemonEnv(t)
	s := d.start()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.WorkerPid))
	if err != nil {
		t.Fatal(err)
	}
	limit := fmt.Sprintf("--nofile=%d:%d", len(fds)+8, len(fds)+8)
	if out, err := exec.Command("prlimit", "--pid", strconv.Itoa(s.WorkerPid), limit).CombinedOutput(); err != nil {
		t.Skipf("prlimit: %v: %s", err, out)
	}
	var conns []*net.UnixConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 40; i++ {
		c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: filepath.Join(d.dir, "control.sock"), Net: "unixpacket"})
		if err != nil {
			break // the backlog is full
		}
		conns = append(conns, c)
	}
	time.Sleep(200 * time.Millisecond) // the worker accepts what it can
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	if got := d.status(); got.WorkerPid != s.WorkerPid {
		t.Errorf("worker %d was replaced by %d after a connection flood", s.WorkerPid, got.WorkerPid)
	}
	if log, _ := os.ReadFile(filepath.Join(d.dir, "daemon.log")); !strings.Contains(string(log), "too many open files") {
		t.Error("the flood did not reach the worker's fd limit (no EMFILE in daemon.log)")
	}
}

// TestDaemonForegroundTwiceRunsOne: two `lkc daemon` started at once in
// one directory (a unit and an operator, say) must not both run: the
// second would take control.sock from the first, which would then hold
// its containers' fds with nobody able to reach it.
func TestDaemonForegroundTwiceRunsOne(t *testing.T) {
	d := newDaemonEnv(t)
	type run struct {
		cmd  *exec.Cmd
		out  *os.File
		done chan error
	}
	runs := make([]*run, 2)
	for i := range runs {
		r := &run{cmd: exec.Command(d.bin, "--root", d.root, "daemon"), out: d.tempFile(), done: make(chan error, 1)}
		r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { r.done <- r.cmd.Wait() }()
		runs[i] = r
	}
	t.Cleanup(func() {
		for _, r := range runs {
			r.cmd.Process.Signal(unix.SIGTERM) // a holder stops its worker
			select {
			case <-r.done:
			case <-time.After(5 * time.Second):
				r.cmd.Process.Kill()
			}
		}
	})
	var exited *run
	select {
	case <-runs[0].done:
		exited = runs[0]
	case <-runs[1].done:
		exited = runs[1]
	case <-time.After(5 * time.Second):
		t.Fatalf("both lkc daemon run in %s", d.dir)
	}
	exited.done <- nil // for the cleanup
	if out := readAll(exited.out); !strings.Contains(out, "lkc daemon already runs in "+d.dir) {
		t.Errorf("the second lkc daemon said %q, want that one already runs", out)
	}
	for i := 0; d.lkc("daemon", "status").code != 0; i++ {
		if i == 100 {
			t.Fatal("the first lkc daemon does not serve")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDaemonStatusOfManyContainers: status must list every served
// container however many there are, though one control message holds at
// most 64 KiB (about 500 containers' entries).
func TestDaemonStatusOfManyContainers(t *testing.T) {
	d := newDaemonEnv(t)
	d.start()
	cl, err := daemonapi.Dial(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 700
	for i := range n {
		id := fmt.Sprintf("%064d", i)
		if _, err := cl.Adopt(d.root, id, hostconf.Features{}); err != nil {
			t.Fatalf("adopt %d: %v", i, err)
		}
	}
	if s := d.status(); len(s.Containers) != n {
		t.Errorf("status lists %d containers, want %d", len(s.Containers), n)
	}
	if r := d.lkc("daemon", "status"); r.code != 0 || strings.Count(r.stdout, "\nslot ") != n {
		t.Errorf("daemon status: want %d slot lines: %v", n, r.stderr)
	}
}

// TestDaemonFlagWithoutItsCommand: a command's flag without its command
// (`lkc daemon --json` for `lkc daemon status --json`) is a one-line
// error, not a daemon started in the foreground.
func TestDaemonFlagWithoutItsCommand(t *testing.T) {
	d := newDaemonEnv(t)
	for _, tc := range []struct {
		want string
		args []string
	}{
		{`^lkc: daemon: --json goes with status$`, []string{"daemon", "--json"}},
		{`^lkc: daemon: --exe goes with upgrade$`, []string{"daemon", "--exe", "/bin/true"}},
		{`^lkc: daemon: --json goes with status$`, []string{"daemon", "--json", "stop"}},
		{`^lkc: daemon: --detach starts the daemon: it takes no command$`, []string{"daemon", "--detach", "status"}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cmd := exec.CommandContext(ctx, d.bin, append([]string{"--root", d.root}, tc.args...)...)
		cmd.WaitDelay = time.Second // a started worker keeps the output open
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		msg := strings.TrimRight(string(out), "\n")
		if timedOut {
			t.Errorf("lkc %v still ran after 5s (%q)", tc.args, msg)
			continue
		}
		if err == nil || !regexp.MustCompile(tc.want).MatchString(msg) {
			t.Errorf("lkc %v: %v, %q; want an error matching %s", tc.args, err, msg, tc.want)
		}
	}
	if _, err := os.Stat(d.dir); err == nil {
		t.Errorf("a refused command made %s", d.dir)
	}
}

// TestDaemonIdleControlConnectionClosed: a peer that connects to
// control.sock and sends nothing is hung up on once the first-request
// timeout passes, and the worker lets go of the connection (its fd); the
// CLI's own clients, which send as they connect, are served as before.
func TestDaemonIdleControlConnectionClosed(t *testing.T) {
	d := newDaemonEnv(t)
	s := d.start()
	fdCount := func() int {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.WorkerPid))
		return len(fds)
	}
	base := fdCount()
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: filepath.Join(d.dir, "control.sock"), Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(start.Add(daemonapi.DefaultFirstRequestTimeout + 10*time.Second))
	if n, err := c.Read(make([]byte, 64)); n != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a silent peer read %d bytes, %v; want the connection closed", n, err)
	}
	if waited := time.Since(start); waited < daemonapi.DefaultFirstRequestTimeout-time.Second {
		t.Errorf("a silent peer was closed after %v, before the first-request timeout (%v)", waited, daemonapi.DefaultFirstRequestTimeout)
	}
	for end := time.Now().Add(2 * time.Second); fdCount() > base; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the worker holds %d fds after the silent peer was closed, %d before it came", fdCount(), base)
		}
	}
	if got := d.status(); got.WorkerPid != s.WorkerPid {
		t.Errorf("worker %d replaced by %d", s.WorkerPid, got.WorkerPid)
	}
	if log, _ := os.ReadFile(filepath.Join(d.dir, "daemon.log")); !strings.Contains(string(log), "no request for") {
		t.Error("daemon.log does not say why the connection was closed")
	}
}
