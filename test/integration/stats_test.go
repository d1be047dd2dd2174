package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// statsSample is one JSON line of `lkc stats --json`.
type statsSample struct {
	ID          string  `json:"id"`
	Status      string  `json:"status"`
	Policy      string  `json:"policy"`
	CPUNanos    uint64  `json:"cpuNanos"`
	CPUPercent  float64 `json:"cpuPercent"`
	MemoryUsed  uint64  `json:"memoryUsed"`
	MemoryLimit uint64  `json:"memoryLimit"`
	Pids        uint64  `json:"pids"`
	NetRx       uint64  `json:"netRxBytes"`
	NetTx       uint64  `json:"netTxBytes"`
	OOMKills    uint64  `json:"oomKills"`
}

// shmHog is a container that puts mib MiB in /dev/shm (charged to its
// memory cgroup), marks it done, then runs body.
func (e *env) shmHog(mib int, body string, mutate func(*specs.Spec)) string {
	e.t.Helper()
	script := fmt.Sprintf("dd if=/dev/zero of=/dev/shm/f bs=1M count=%d 2>/dev/null && touch /dev/shm/done; %s", mib, body)
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sh", "-c", script}, mutate), id)
	deadline := time.Now().Add(10 * time.Second)
	for e.lkc("exec", id, "test", "-e", "/dev/shm/done").code != 0 {
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s never filled /dev/shm", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return id
}

const burn = "(while :; do :; done) & while :; do :; done"

func (e *env) statsJSON(args ...string) []statsSample {
	e.t.Helper()
	out := e.mustLkc(append([]string{"stats", "--no-stream", "--json"}, args...)...)
	var samples []statsSample
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var s statsSample
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			e.t.Fatalf("stats --json line %q: %v", line, err)
		}
		samples = append(samples, s)
	}
	return samples
}

// TestStatsBusyContainer: a container burning two CPUs with 48 MiB in
// /dev/shm shows the CPU share its cgroup used, its memory near 48 MiB, its limit and
// tasks, in JSON and in docker stats' table.
func TestStatsBusyContainer(t *testing.T) {
	e := newEnv(t)
	limit := int64(256 << 20)
	id := e.shmHog(48, burn, func(s *specs.Spec) {
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	})
	u0, t0 := cpuUsage(t, id), time.Now()
	got := e.statsJSON(id)
	u1, t1 := cpuUsage(t, id), time.Now()
	if len(got) != 1 {
		t.Fatalf("stats of one container: %+v", got)
	}
	s := got[0]
	if s.ID != id || s.Status != "running" || s.Policy != "kernel" {
		t.Errorf("sample %+v: want id %s, running, policy kernel", s, id)
	}
	// The share two busy loops get depends on the host's load: stats'
	// sample lies within [t0, t1], so it is held to the cgroup's own usage
	// over that window.
	truth := 100 * float64(u1-u0) / float64(t1.Sub(t0))
	if s.CPUPercent < truth/2-5 || s.CPUPercent > truth*1.5+10 {
		t.Errorf("CPU %.1f%% for two busy loops, while the cgroup used %.1f%% around the sample", s.CPUPercent, truth)
	}
	if s.MemoryUsed < 48<<20 || s.MemoryUsed > 80<<20 {
		t.Errorf("memory used %d, want 48 MiB to 80 MiB", s.MemoryUsed)
	}
	if s.MemoryLimit != uint64(limit) || s.Pids < 2 {
		t.Errorf("memory limit %d, tasks %d: want %d and at least 2 (the shell and its subshell)", s.MemoryLimit, s.Pids, limit)
	}
	table := e.mustLkc("stats", "--no-stream", "--interval", "200ms", id)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "CONTAINER ID") ||
		!strings.HasPrefix(lines[1], id+" ") || !strings.Contains(lines[1], "MiB / 256MiB") {
		t.Errorf("stats table:\n%s", table)
	}
}

// TestStatsStreamsAndRefusesUnknown: without --no-stream stats prints a
// sample each interval until interrupted; an unknown id is a one-line
// error naming it, even beside a known one.
func TestStatsStreamsAndRefusesUnknown(t *testing.T) {
	e := newEnv(t)
	id, _ := e.counter()
	cmd := exec.Command(e.bin, "--root", e.root, "stats", "--json", "--interval", "100ms", id)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for n := 0; n < 3; n++ {
		if !sc.Scan() {
			t.Fatalf("stats stream ended after %d samples: %v", n, sc.Err())
		}
		var s statsSample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil || s.ID != id {
			t.Fatalf("stream line %q: %v", sc.Text(), err)
		}
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Errorf("stats after SIGINT: %v", err)
	}
	e.failLkc(`^lkc: stats: container nope-`+id+`: container does not exist$`, "stats", "--no-stream", id, "nope-"+id)
	e.failLkc(`^lkc: stats: container bad/id: `, "stats", "--no-stream", "bad/id")
	e.failLkc(`^lkc: stats: --interval 0s: must be positive$`, "stats", "--interval", "0", id)
	// Two reads microseconds apart make CPU % noise and a busy loop.
	e.failLkc(`^lkc: stats: --interval 1ns: below the 10ms minimum$`, "stats", "--no-stream", "--interval", "1ns", id)
}

// TestTopOnceSorts: top --once lists every container of the root and
// sorts by the column asked; --json gives the same rows as an array; the
// live view refuses without a terminal.
func TestTopOnceSorts(t *testing.T) {
	e := newEnv(t)
	busy := e.shmHog(1, burn, nil)
	big := e.shmHog(40, "sleep 1000", nil)
	idle := e.shmHog(1, "sleep 1000", nil)
	firstRow := func(col string) string {
		t.Helper()
		out := e.mustLkc("top", "--once", "--interval", "500ms", "--sort", col)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "CONTAINER ID") {
			t.Fatalf("top --once --sort %s: want a heading and 3 rows:\n%s", col, out)
		}
		for _, l := range lines[1:] {
			if f := strings.Fields(l); len(f) < 12 || f[1] != "running" || f[len(f)-1] != "kernel" {
				t.Errorf("row %q: want id, running, ..., kernel", l)
			}
		}
		return strings.Fields(lines[1])[0]
	}
	if got := firstRow("cpu"); got != busy {
		t.Errorf("--sort cpu: first %s, want the busy %s", got, busy)
	}
	if got := firstRow("mem"); got != big {
		t.Errorf("--sort mem: first %s, want the big %s", got, big)
	}
	if got, want := firstRow("id"), min(busy, big, idle); got != want {
		t.Errorf("--sort id: first %s, want %s", got, want)
	}
	var rows []statsSample
	if err := json.Unmarshal([]byte(e.mustLkc("top", "--once", "--json", "--interval", "100ms")), &rows); err != nil {
		t.Fatalf("top --json: %v", err)
	}
	ids := map[string]bool{}
	for _, r := range rows {
		ids[r.ID] = true
	}
	if len(rows) != 3 || !ids[busy] || !ids[big] || !ids[idle] {
		t.Errorf("top --json rows %+v: want %s %s %s", rows, busy, big, idle)
	}
	e.failLkc(`^lkc: top: --sort "bogus": use one of id, state, cpu, mem, pids, block, net, oom, policy$`, "top", "--once", "--sort", "bogus")
	e.failLkc(`^lkc: top: the live view needs a terminal: use --once or --json$`, "top")
	e.failLkc(`^lkc: top: --interval 999µs: below the 10ms minimum$`, "top", "--once", "--interval", "999us")
}

// TestStatsNetwork: bytes through a veth in the container's network
// namespace show in its stats, read from the host through its init.
func TestStatsNetwork(t *testing.T) {
	e := newEnv(t)
	id, _ := e.counter()
	pid := fmt.Sprint(e.state(id)["pid"])
	ns := fmt.Sprintf("lkcit%d", os.Getpid())
	host, peer := "lkcv"+ns[5:], "eth0"
	mustRun := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	mustRun("ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	mustRun("ip", "-n", ns, "link", "add", host, "type", "veth", "peer", "name", peer, "netns", pid)
	mustRun("ip", "-n", ns, "addr", "add", "10.231.0.1/30", "dev", host)
	mustRun("ip", "-n", ns, "link", "set", host, "up")
	mustRun("nsenter", "-t", pid, "-n", "ip", "addr", "add", "10.231.0.2/30", "dev", peer)
	mustRun("nsenter", "-t", pid, "-n", "ip", "link", "set", peer, "up")
	before := e.statsJSON("--interval", "10ms", id)[0]
	mustRun("ip", "netns", "exec", ns, "/bin/busybox", "ping", "-c", "3", "-s", "1000", "-W", "2", "10.231.0.2")
	after := e.statsJSON("--interval", "10ms", id)[0]
	if after.NetRx < before.NetRx+3000 || after.NetTx < before.NetTx+3000 {
		t.Errorf("3 pings of 1000 bytes: rx %d -> %d, tx %d -> %d; want each up by 3000",
			before.NetRx, after.NetRx, before.NetTx, after.NetTx)
	}
}

// TestStatsTopSkipCorruptContainer: a container whose record is corrupt
// is left out of stats and top of every container, with one warning
// naming it (as `lkc list` does), and the others are still shown; named,
// it is a one-line error.
func TestStatsTopSkipCorruptContainer(t *testing.T) {
	e := newEnv(t)
	id, _ := e.counter()
	bad := e.id()
	if err := os.Mkdir(filepath.Join(e.root, bad), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.root, bad, "state.json"), []byte("{junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"stats", "--no-stream"}, {"top", "--once", "--interval", "100ms"}} {
		r := e.lkc(args...)
		if r.code != 0 || !strings.Contains(r.stdout, id) || strings.Contains(r.stdout, bad) {
			t.Errorf("lkc %s beside a corrupt container: %v; want %s shown, %s left out", strings.Join(args, " "), r, id, bad)
		}
		if !regexp.MustCompile(`^lkc: warning: container ` + bad + `: corrupt state .*\n$`).MatchString(r.stderr) {
			t.Errorf("lkc %s: stderr %q, want one warning naming %s", strings.Join(args, " "), r.stderr, bad)
		}
	}
	e.failLkc(`^lkc: stats: container `+bad+`: corrupt state `, "stats", "--no-stream", bad)
	os.RemoveAll(filepath.Join(e.root, bad))
}
