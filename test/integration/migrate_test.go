package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/checkpoint"
)

// migCounter writes an ever-growing count to a tmpfs file, which CRIU moves
// with the container.
var migCounter = []string{"sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /dev/shm/count; sleep 0.02; done"}

// migCount reads the counter's file. The shell truncates it before it
// writes the next number, so an empty read is retried.
func migCount(t *testing.T, e *env, id string) int {
	t.Helper()
	var out string
	for try := 0; try < 50; try++ {
		out = strings.TrimSpace(e.mustLkc("exec", id, "cat", "/dev/shm/count"))
		if out != "" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	n, err := strconv.Atoi(out)
	if err != nil {
		t.Fatalf("count %q: %v", out, err)
	}
	return n
}

// criuLogTail returns the end of the CRIU log an error message names,
// which the failed side removes with its staging directory only later.
func criuLogTail(msg string) string {
	m := regexp.MustCompile(`log: (/\S+)\)`).FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	data, _ := os.ReadFile(m[1])
	lines := strings.Split(string(data), "\n")
	return "\n" + m[1] + ":\n" + strings.Join(lines[max(0, len(lines)-30):], "\n")
}

type summary struct {
	DowntimeMS float64 `json:"downtime_ms"`
	TotalMS    float64 `json:"total_ms"`
	WaitMS     float64 `json:"wait_ms"`
	Bytes      int64   `json:"bytes"`
	Rounds     int     `json:"rounds"`
	Mode       string  `json:"mode"`
	PageBytes  int64   `json:"page_bytes"`
	Fallback   string  `json:"fallback"`
}

func mustMigrate(t *testing.T, h *testHosts, from, to *testHost, id string, flags ...string) summary {
	t.Helper()
	return checkSummary(t, to, h.migrate(from, to, id, flags...))
}

// checkSummary fails unless r is a successful migration to host to with a
// plausible summary, which it returns.
func checkSummary(t *testing.T, to *testHost, r result) summary {
	t.Helper()
	if r.code != 0 {
		log, _ := os.ReadFile(to.serveLog)
		t.Fatalf("migrate: %v\nreceiver log:\n%s%s", r, log, criuLogTail(r.stderr+string(log)))
	}
	var s summary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("summary %q: %v", r.stdout, err)
	}
	if s.TotalMS <= 0 || s.DowntimeMS <= 0 || s.DowntimeMS > s.TotalMS || s.Bytes <= 0 || s.Mode == "" {
		t.Fatalf("implausible summary %+v", s)
	}
	return s
}

// A counting container moves from A to B and back, and keeps counting
// from where it was, with its limits.
func TestMigrateCounter(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	h.startServe(a)
	h.startServe(b)
	// A second, long-lived process (tail) whose pid must stay, and a time
	// namespace whose clocks must stay shifted.
	const offset = 10000
	args := []string{"sh", "-c", "tail -f /dev/null & " + migCounter[2]}
	id, _ := h.runContainer(a, args, func(s *specs.Spec) {
		limit := int64(64 << 20)
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
		setNamespace(s, specs.TimeNamespace, "")
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: offset}, "boottime": {Secs: offset}}
	})
	time.Sleep(200 * time.Millisecond)
	a.e.mustLkc("update", "--pids-limit", "77", id)
	tailPid := strings.TrimSpace(a.e.mustLkc("exec", id, "pidof", "tail"))
	checkTimeShift(t, a.e, id, offset, 0)
	before := migCount(t, a.e, id)
	s := mustMigrate(t, h, a, b, id, "--shared-storage", "--mode", "stopcopy")
	t.Logf("A->B: %+v", s)
	if r := a.e.lkc("state", id); r.code == 0 {
		t.Fatalf("the source still has %s after the move: %v", id, r)
	}
	b.e.waitStatus(id, "running")
	after := migCount(t, b.e, id)
	time.Sleep(100 * time.Millisecond)
	later := migCount(t, b.e, id)
	if after < before || later <= after {
		t.Fatalf("count before %d, after %d, later %d: the migCounter did not continue", before, after, later)
	}
	pids := strings.TrimSpace(b.e.mustLkc("exec", id, "cat", cgroupFile("pids", "pids.max", "pids.max")))
	if pids != "77" {
		t.Errorf("pids.max after the move %q, want 77 (the limit set with lkc update)", pids)
	}
	mem := strings.TrimSpace(b.e.mustLkc("exec", id, "cat", cgroupFile("memory", "memory.limit_in_bytes", "memory.max")))
	if mem != strconv.Itoa(64<<20) {
		t.Errorf("memory limit after the move %q, want %d", mem, 64<<20)
	}
	// Its tasks keep a cgroup namespace rooted at their cgroup, whether
	// CRIU placed them or started in the cgroups itself.
	for _, l := range strings.Fields(b.e.mustLkc("exec", id, "cat", "/proc/1/cgroup")) {
		if !strings.HasSuffix(l, ":/") {
			t.Errorf("init's cgroup after the move: %q, want / in its own cgroup namespace", l)
		}
	}
	if got := strings.TrimSpace(b.e.mustLkc("exec", id, "pidof", "tail")); got != tailPid || tailPid == "" {
		t.Errorf("tail's pid in the container after the move %q, want %q", got, tailPid)
	}
	// CRIU resumes the namespace's clocks where the dump stopped them:
	// they lag by the downtime.
	checkTimeShift(t, b.e, id, offset, s.DowntimeMS/1000)
	checkNoStagingMounts(t, b, id)
	mustMigrate(t, h, b, a, id, "--shared-storage", "--mode", "stopcopy")
	a.e.waitStatus(id, "running")
	if back := migCount(t, a.e, id); back < later {
		t.Fatalf("count after the way back %d < %d", back, later)
	}
}

// A client outside both hosts keeps one TCP connection to a server in the
// container while it moves, and sees no error.
func TestMigrateTCP(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	h.startServe(b)
	id, addr := h.runContainer(a, []string{"nc", "-l", "-p", "7000", "-e", "cat"}, nil)
	var cc net.Conn
	deadline := time.Now().Add(settle)
	for {
		var err error
		if cc, err = h.dialFromLAN(addr + ":7000"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connecting to the container: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer cc.Close()
	r := bufio.NewReader(cc)
	echo := func(i int) {
		t.Helper()
		msg := fmt.Sprintf("ping %d", i)
		if _, err := cc.Write([]byte(msg + "\n")); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		got, err := readLine(cc, r, 10*time.Second)
		if err != nil || got != msg {
			t.Fatalf("echo %d: %q %v", i, got, err)
		}
	}
	echo(0)
	done := make(chan result, 1)
	go func() { done <- h.migrate(a, b, id, "--shared-storage", "--tcp-established", "--mode", "stopcopy") }()
	for i := 1; ; i++ {
		select {
		case res := <-done:
			if res.code != 0 && strings.Contains(res.stderr, "cannot dump TCP/UDP sockets") {
				// The failed move must have left the server running on
				// the source with the connection intact.
				for j := i; j < i+5; j++ {
					echo(j)
				}
				t.Skipf("CRIU cannot dump TCP sockets on this kernel (the source kept the connection): %s", res.stderr)
			}
			if res.code != 0 {
				log, _ := os.ReadFile(b.serveLog)
				t.Fatalf("migrate: %v\nreceiver log:\n%s", res, log)
			}
			b.e.waitStatus(id, "running")
			for j := i; j < i+20; j++ {
				echo(j)
			}
			return
		default:
			echo(i)
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Killing the receiver at each step leaves the container running on the
// source and nothing on the target once it restarts.
func TestMigrateReceiverKilled(t *testing.T) {
	for _, phase := range []string{"connect", "rootfs", "images", "restore"} {
		t.Run(phase, func(t *testing.T) {
			h := newTestHosts(t)
			a, b := h.hosts[0], h.hosts[1]
			h.startServe(b)
			rootfs := a.e.writableRootfs()
			// Ballast, so that the rootfs phase lasts under --bwlimit.
			if err := os.WriteFile(filepath.Join(rootfs, "ballast"), make([]byte, 4<<20), 0o644); err != nil {
				t.Fatal(err)
			}
			id, _ := h.runContainer(a, migCounter, func(s *specs.Spec) { s.Root.Path = rootfs; s.Root.Readonly = false })
			cmd := h.lkcIn(a, "migrate", "--token-file", h.token, "--progress", "--bwlimit", "8000000", "--mode", "stopcopy", id, b.ip+":7070")
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var lines []string
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				lines = append(lines, sc.Text())
				if strings.HasPrefix(sc.Text(), "phase "+phase+" ") {
					b.killServe()
					break
				}
			}
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
			err = cmd.Wait()
			if err == nil {
				t.Fatalf("migrate succeeded although the receiver was killed at %s: %q", phase, lines)
			}
			if b.serve != nil {
				t.Fatalf("the migration never reached phase %s: %q", phase, lines)
			}
			a.e.waitStatus(id, "running")
			n1 := migCount(t, a.e, id)
			time.Sleep(100 * time.Millisecond)
			if n2 := migCount(t, a.e, id); n2 <= n1 {
				t.Fatalf("the source container stopped counting after the failed move: %d then %d", n1, n2)
			}
			h.startServe(b) // a restarted receiver sweeps what the killed one left
			// Only the receiver's empty directory of pending marks stays.
			entries, _ := os.ReadDir(b.bundles)
			marks, _ := os.ReadDir(filepath.Join(b.bundles, "@pending"))
			if len(entries) != 1 || entries[0].Name() != "@pending" || len(marks) > 0 {
				log, _ := os.ReadFile(b.serveLog)
				t.Errorf("the target kept %v (pending %v) after the failed move; receiver log:\n%s", names(entries), names(marks), log)
			}
			if entries, _ := os.ReadDir(b.root); len(entries) > 0 {
				t.Errorf("the target's root kept %v after the failed move", names(entries))
			}
			// Before the rootfs (a later temp dir) goes away.
			a.e.mustLkc("delete", "--force", id)
		})
	}
}

// The receiver refuses a sender without the token and a container it
// already has, survives a client that speaks garbage, and the source keeps
// running each time.
func TestMigrateRefusals(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	h.startServe(b)
	id, _ := h.runContainer(a, migCounter, nil)
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("not-the-shared-token-at-all"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := h.migrate(a, b, id, "--token-file", bad)
	if r.code == 0 || !strings.Contains(r.stderr, "the receiver refused this token") {
		t.Fatalf("wrong token: %v", r)
	}
	conn, err := h.dialFromLAN(b.ip + ":7070")
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("GET / HTTP/1.0\r\n\r\n" + strings.Repeat("x", 1<<16)))
	conn.Close()
	if err := exec.Command(lkcBinary, "--root", b.root, "run", "-d", "--bundle", b.e.bundle([]string{"sleep", "100"}, func(s *specs.Spec) { s.Linux.CgroupsPath = "lkc/clash-" + id }), id).Run(); err != nil {
		t.Fatal(err)
	}
	r = h.migrate(a, b, id, "--shared-storage", "--mode", "stopcopy")
	if r.code == 0 || !strings.Contains(r.stderr, "already exists on the target") {
		t.Fatalf("id taken on the target: %v", r)
	}
	b.e.mustLkc("delete", "--force", id)
	a.e.waitStatus(id, "running")
	mustMigrate(t, h, a, b, id, "--shared-storage", "--mode", "stopcopy")
	b.e.waitStatus(id, "running")
}

// Without --shared-storage the rootfs moves too: the container finds on
// the target what it wrote on the source.
func TestMigrateRootfs(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	h.startServe(b)
	rootfs := a.e.writableRootfs()
	id, _ := h.runContainer(a, []string{"sh", "-c", "echo moved > /marker; " + migCounter[2]}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = rootfs, false
	})
	a.e.waitStatus(id, "running")
	time.Sleep(100 * time.Millisecond)
	mustMigrate(t, h, a, b, id, "--mode", "stopcopy")
	if got := strings.TrimSpace(b.e.mustLkc("exec", id, "cat", "/marker")); got != "moved" {
		t.Fatalf("/marker on the target: %q", got)
	}
	if _, err := os.Stat(filepath.Join(b.bundles, id, "rootfs", "marker")); err != nil {
		t.Fatalf("the target's bundle lacks the rootfs: %v", err)
	}
	b.e.mustLkc("delete", "--force", id)
}

// checkCounting fails unless container id on host x counts on from at
// least from.
func checkCounting(t *testing.T, x *testHost, id string, from int) {
	t.Helper()
	x.e.waitStatus(id, "running")
	n1 := migCount(t, x.e, id)
	n2 := n1
	for deadline := time.Now().Add(settle); n2 <= n1 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		n2 = migCount(t, x.e, id)
	}
	if n1 < from || n2 <= n1 {
		t.Fatalf("count before the move %d, then %d and %d: the counter did not continue", from, n1, n2)
	}
}

// countingOnA sets up the two test hosts with a receiver on B and a
// counter container on A that has counted for a while, and returns the
// count then.
func countingOnA(t *testing.T) (h *testHosts, a, b *testHost, id string, before int) {
	t.Helper()
	h = newTestHosts(t)
	a, b = h.hosts[0], h.hosts[1]
	h.startServe(b)
	id, _ = h.runContainer(a, migCounter, nil)
	time.Sleep(200 * time.Millisecond)
	return h, a, b, id, migCount(t, a.e, id)
}

// Post-copy: the container restarts on the target before its memory is
// there, and the target's lazy-pages daemon fetches it through the
// sender's page proxy. Where CRIU's page server cannot size its pipe
// (no CAP_SYS_RESOURCE, fs.pipe-max-size too small), the move is refused
// in one line: the source keeps counting, the target keeps nothing.
func TestMigratePostcopy(t *testing.T) {
	h, a, b, id, before := countingOnA(t)
	r := h.migrate(a, b, id, "--shared-storage", "--postcopy")
	if why := checkpoint.CanServeLazyPages(); why != nil {
		if r.code == 0 || !strings.Contains(r.stderr, "cannot post-copy: CRIU's page server needs") {
			t.Fatalf("post-copy where CRIU cannot serve lazy pages (%v): %v", why, r)
		}
		checkCounting(t, a, id, before)
		if entries, _ := os.ReadDir(b.root); len(entries) > 0 {
			t.Fatalf("the target kept %v after the refused post-copy", names(entries))
		}
		t.Logf("CRIU cannot serve lazy pages here; the move was refused cleanly: %s", r.stderr)
		return
	}
	s := checkSummary(t, b, r)
	t.Logf("A->B post-copy: %+v", s)
	if s.Mode != "postcopy" || s.PageBytes <= 0 {
		t.Fatalf("a post-copy move sent no pages through the page proxy: %+v", s)
	}
	if r := a.e.lkc("state", id); r.code == 0 {
		t.Fatalf("the source still has %s after the move: %v", id, r)
	}
	checkCounting(t, b, id, before)
	checkNoStagingMounts(t, b, id)
	// Both sides staged the images in /dev/shm and removed them.
	if left, _ := filepath.Glob("/dev/shm/lkc-*-" + id + "-*"); len(left) > 0 {
		t.Errorf("staged images left after the move: %v", left)
	}
}

// Pre-copy: rounds of pre-dumps while the container runs, each only what
// it dirtied since the last, then a final dump of the rest. Without
// soft-dirty tracking the sender refuses it in one line before it moves
// anything.
func TestMigratePrecopy(t *testing.T) {
	criu := requireCriu(t)
	h, a, b, id, before := countingOnA(t)
	if !softDirty(t, criu) {
		r := h.migrate(a, b, id, "--shared-storage", "--mode", "precopy")
		if r.code == 0 || !strings.Contains(r.stderr, "does not track dirty memory (soft-dirty)") {
			t.Fatalf("pre-copy without dirty tracking: %v", r)
		}
		checkCounting(t, a, id, before)
		t.Log("this kernel has no soft-dirty tracking: pre-copy was refused cleanly")
		return
	}
	// Rounds go on while each is below 0.9 of the one before: the first
	// holds all the memory, the next only what the counter dirtied.
	r := h.migrate(a, b, id, "--shared-storage", "--mode", "precopy", "--max-rounds", "3",
		"--converge-bytes", "1", "--converge-ratio", "0.9")
	s := checkSummary(t, b, r)
	t.Logf("A->B pre-copy: %+v", s)
	if s.Mode != "precopy" || s.Rounds < 2 {
		t.Fatalf("pre-copy made %d rounds, want at least 2: %+v", s.Rounds, s)
	}
	checkCounting(t, b, id, before)
}

// TestMigrateDefaultMode moves a container without naming a mode: lkc
// picks pre-copy where the kernel tracks dirty memory, else post-copy
// where CRIU can serve lazy pages from here, else stop-and-copy. Either
// way the container arrives and keeps counting.
func TestMigrateDefaultMode(t *testing.T) {
	criu := requireCriu(t)
	h, a, b, id, before := countingOnA(t)
	r := h.migrate(a, b, id, "--shared-storage")
	s := checkSummary(t, b, r)
	t.Logf("A->B default mode: %+v", s)
	want := "postcopy"
	if softDirty(t, criu) {
		want = "precopy"
	} else if checkpoint.CanServeLazyPages() != nil {
		want = "stopcopy"
	}
	if s.Mode != want || s.Fallback != "" {
		t.Fatalf("default mode: moved by %s (fallback %q), want %s", s.Mode, s.Fallback, want)
	}
	if r := a.e.lkc("state", id); r.code == 0 {
		t.Fatalf("the source still has %s after the move: %v", id, r)
	}
	checkCounting(t, b, id, before)
	// Both sides staged the images in /dev/shm and removed them.
	if left, _ := filepath.Glob("/dev/shm/lkc-*-" + id + "-*"); len(left) > 0 {
		t.Errorf("staged images left after the move: %v", left)
	}
}

// checkNoStagingMounts fails if the mounts the target's restore staged for
// CRIU in the container's state dir (its view of the rootfs, the masked
// directories' and the tmpfs mounts' sources) outlive the move: the
// receiver unmounts them after its reply, before it takes the commit.
func checkNoStagingMounts(t *testing.T, x *testHost, id string) {
	t.Helper()
	dir := filepath.Join(x.root, id) + "/"
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, " "+dir) {
			t.Errorf("a restore's staging mount left on the target after the move: %s", line)
		}
	}
}

// checkTimeShift fails unless the boot-time clock in container id runs
// about offset seconds ahead of the host's, less up to lag seconds.
func checkTimeShift(t *testing.T, e *env, id string, offset, lag float64) {
	t.Helper()
	var host unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &host)
	out := e.mustLkc("exec", id, "cat", "/proc/uptime")
	f := strings.Fields(out)
	up, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		t.Fatalf("uptime in the container %q: %v", out, err)
	}
	if diff := up - float64(host.Sec); diff < offset-lag-1 || diff > offset+30 {
		t.Errorf("uptime in the container %.2f, the host's %d: shifted by %.0f s, want about %.0f", up, host.Sec, diff, offset)
	}
}
