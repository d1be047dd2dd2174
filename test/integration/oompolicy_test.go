package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// oomLimit is the tests' container limit; the allocator asks for twice it.
const oomLimit = 32 << 20

// requireOOMHold skips where the kernel cannot hold a container at its
// limit (cgroup v2: the policies act at memory.high instead).
func requireOOMHold(t *testing.T) {
	t.Helper()
	if cgroupV2() {
		t.Skip("needs the v1 OOM hold (docs/oom.md)")
	}
}

// oomContainer runs a sleeping container limited to oomLimit with the
// given annotations, autostarting this test's daemon, and waits until the
// daemon armed it (its OOM killer off).
func (d *daemonEnv) oomContainer(annotations map[string]string) (id, cgroup string) {
	d.t.Helper()
	return d.oomContainerWith(annotations, memoryOnly(oomLimit))
}

// oomContainerWith is oomContainer with memory limits mem.
func (d *daemonEnv) oomContainerWith(annotations map[string]string, mem *specs.LinuxMemory) (id, cgroup string) {
	d.t.Helper()
	b := d.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Annotations = annotations
		s.Linux.Resources = &specs.LinuxResources{Memory: mem}
	})
	id = d.id()
	d.mustLkc("run", "-d", "--bundle", b, id)
	d.t.Cleanup(func() { d.lkc("delete", "--force", id) })
	var st struct {
		CgroupPaths map[string]string `json:"cgroupPaths"`
	}
	raw, _ := os.ReadFile(filepath.Join(d.root, id, "state.json"))
	err := json.Unmarshal(raw, &st)
	cgroup = st.CgroupPaths["memory"]
	if cgroup == "" {
		cgroup = st.CgroupPaths[""] // v2
	}
	if err != nil || cgroup == "" {
		d.t.Fatalf("state.json of %s: no memory cgroup (%v)", id, err)
	}
	waitFor(d.t, func() bool { return oomDisabled(cgroup) }, "the daemon to turn the OOM killer off")
	return id, cgroup
}

// oomDisabled says whether the daemon armed the cgroup: v1 OOM killer
// off, v2 memory.high set below memory.max.
func oomDisabled(cgroup string) bool {
	if cgroupV2() {
		b, _ := os.ReadFile(filepath.Join(cgroup, "memory.high"))
		return strings.TrimSpace(string(b)) != "max" && len(b) > 0
	}
	b, _ := os.ReadFile(filepath.Join(cgroup, "memory.oom_control"))
	return strings.Contains(string(b), "oom_kill_disable 1")
}

// oomKills is the cgroup's count of kills by the kernel's OOM killer (v1
// memory.oom_control, v2 memory.events).
func oomKills(cgroup string) int {
	file := "memory.oom_control"
	if cgroupV2() {
		file = "memory.events"
	}
	b, _ := os.ReadFile(filepath.Join(cgroup, file))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// allocate runs, inside the container, an allocator that doubles a
// string 26 times (64 MiB, twice the limit; awk's memcpy faults the pages
// in from user space, where a memcg OOM holds the task: a read(2) into a
// fresh buffer only comes back short), after printing the host's uptime
// (CLOCK_BOOTTIME, which the daemon's events carry too). It returns the
// allocator's result and that uptime.
func (d *daemonEnv) allocate(id string) (result, float64) {
	return d.allocateLog2(id, 26)
}

func (d *daemonEnv) allocateLog2(id string, n int) (result, float64) {
	r := d.lkc("exec", id, "sh", "-c", fmt.Sprintf(`cut -d' ' -f1 /proc/uptime; exec awk 'BEGIN { s = "x"; for (i = 0; i < %d; i++) s = s s; print length(s) }'`, n))
	up, _ := strconv.ParseFloat(strings.TrimSpace(strings.SplitN(r.stdout, "\n", 2)[0]), 64)
	return r, up
}

// policyEvents reads the container's events.jsonl.
func (d *daemonEnv) policyEvents(id string) []map[string]any {
	f, err := os.Open(filepath.Join(d.root, id, "events.jsonl"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			d.t.Errorf("events.jsonl: bad line %q", sc.Text())
			continue
		}
		out = append(out, ev)
	}
	return out
}

// event returns the first event of type typ after the first n, waiting
// for it up to 10 s.
func (d *daemonEnv) event(id, typ string, n int) map[string]any {
	d.t.Helper()
	var found map[string]any
	waitFor(d.t, func() bool {
		evs := d.policyEvents(id)
		for _, ev := range evs[min(n, len(evs)):] {
			if ev["type"] == typ {
				found = ev
				return true
			}
		}
		return false
	}, "a "+typ+" event")
	return found
}

func eventData(ev map[string]any) map[string]any { return ev["data"].(map[string]any) }

// actionMs is the time from the allocation's start to the event's action,
// both read on CLOCK_BOOTTIME (/proc/uptime has 10 ms steps).
func actionMs(ev map[string]any, start float64) float64 {
	return (eventData(ev)["uptime"].(float64) - start) * 1000
}

// medianP90 formats a latency sample.
func medianP90(ms []float64) string {
	s := append([]float64(nil), ms...)
	sort.Float64s(s)
	return fmt.Sprintf("median %.1f ms, p90 %.1f ms (n=%d)", s[len(s)/2], s[(len(s)*9+9)/10-1], len(s))
}

// TestOOMKillLargest: a child allocating twice the limit is held by the
// kernel, the daemon SIGKILLs it (the largest task) and the container's
// init survives; `lkc events` shows the daemon's events.
func TestOOMKillLargest(t *testing.T) {
	d := newDaemonEnv(t)
	id, _ := d.oomContainer(map[string]string{"org.lkc.oom-policy": "kill-largest"})
	_, stream := d.eventStream(id, "--interval", "1h")
	var lat, held []float64
	for i := 0; i < rounds(10, 4); i++ {
		n := len(d.policyEvents(id))
		r, start := d.allocate(id)
		if r.code != 137 {
			t.Fatalf("allocation %d: want the allocator SIGKILLed (137), got %v; events %v", i, r, d.policyEvents(id)[n:])
		}
		ev := d.event(id, "policy-kill", n)
		if data := eventData(ev); data["comm"] != "awk" || data["init"] != false {
			t.Fatalf("policy-kill %v: want dd, not init", data)
		}
		lat = append(lat, actionMs(ev, start))
		held = append(held, eventData(ev)["ms"].(float64))
	}
	if st := d.state(id)["status"]; st != "running" {
		t.Errorf("container %s after the kills: %v, want running (init survives)", id, st)
	}
	t.Logf("kill-largest: allocation start -> SIGKILL: %s", medianP90(lat))
	t.Logf("kill-largest: notification read -> SIGKILL: %s", medianP90(held))
	seen := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for !seen["policy-kill"] || !seen["oom-held"] {
		select {
		case ev := <-stream:
			seen[fmt.Sprint(ev["type"])] = true
		case <-deadline:
			t.Fatalf("lkc events showed %v, want oom-held and policy-kill", seen)
		}
	}
}

// TestOOMKillNewest: the allocator, the newest process, is the one killed
// and init survives.
func TestOOMKillNewest(t *testing.T) {
	d := newDaemonEnv(t)
	id, _ := d.oomContainer(map[string]string{"org.lkc.oom-policy": "kill-newest"})
	r, _ := d.allocate(id)
	if r.code != 137 {
		t.Fatalf("want the allocator (the newest process) SIGKILLed (137), got %v", r)
	}
	if data := eventData(d.event(id, "policy-kill", 0)); data["comm"] != "awk" || data["policy"] != "kill-newest" {
		t.Errorf("policy-kill %v", data)
	}
	if st := d.state(id)["status"]; st != "running" {
		t.Errorf("container after the kill: %v, want running", st)
	}
}

// setLimit puts the container's limit back for the next round (v2: and
// memory.high where the daemon sets it, limit/16 below).
func setLimit(t *testing.T, cgroup string, n int64) {
	t.Helper()
	files := []string{"memory.limit_in_bytes", "memory.memsw.limit_in_bytes"}
	values := []int64{n, n}
	if cgroupV2() {
		files, values = []string{"memory.high", "memory.max"}, []int64{n - max(n/16, 4<<20), n}
	}
	for i, f := range files {
		if err := os.WriteFile(filepath.Join(cgroup, f), []byte(strconv.FormatInt(values[i], 10)), 0); err != nil && !os.IsNotExist(err) {
			t.Fatalf("resetting %s: %v", f, err)
		}
	}
}

func readLimit(cgroup string) int64 {
	f := "memory.limit_in_bytes"
	if cgroupV2() {
		f = "memory.max"
	}
	b, _ := os.ReadFile(filepath.Join(cgroup, f))
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// TestOOMGrow: grow raises the limit step by step until the allocation
// succeeds, each raise an event; past the ceiling the fallback kills.
func TestOOMGrow(t *testing.T) {
	d := newDaemonEnv(t)
	id, cgroup := d.oomContainer(map[string]string{"org.lkc.oom-policy": "grow:256M"})
	var lat, held []float64
	for i := 0; i < rounds(10, 4); i++ {
		n := len(d.policyEvents(id))
		r, start := d.allocate(id)
		if r.code != 0 {
			t.Fatalf("allocation %d under grow: %v, want success; events %v", i, r, d.policyEvents(id))
		}
		var grows []map[string]any
		for _, ev := range d.policyEvents(id)[n:] {
			if ev["type"] == "policy-grow" {
				grows = append(grows, eventData(ev))
			}
		}
		if len(grows) == 0 {
			t.Fatalf("no policy-grow event")
		}
		if got := readLimit(cgroup); got <= 2*oomLimit || got > 256<<20 || float64(got) != grows[len(grows)-1]["to"].(float64) {
			t.Fatalf("limit %d after the grows %v", got, grows)
		}
		ev := d.event(id, "policy-grow", n)
		lat = append(lat, actionMs(ev, start))
		held = append(held, eventData(ev)["ms"].(float64))
		setLimit(t, cgroup, oomLimit)
	}
	t.Logf("grow: allocation start -> first raise: %s", medianP90(lat))
	t.Logf("grow: notification read -> first raise: %s", medianP90(held))
	// Past the ceiling: the fallback (kill-largest) acts.
	n := len(d.policyEvents(id))
	if r, _ := d.allocateLog2(id, 28); r.code != 137 {
		t.Fatalf("256 MiB under grow:256M: want the fallback's SIGKILL, got %v", r)
	}
	d.event(id, "policy-fallback", n)
	d.event(id, "policy-kill", n)
}

// TestOOMNotify: the handler runs with the container's id and cgroup; one
// that raises the limit resolves the OOM and the allocation succeeds.
func TestOOMNotify(t *testing.T) {
	d := newDaemonEnv(t)
	out := filepath.Join(t.TempDir(), "handler.out")
	handler := fmt.Sprintf(`echo "$1 $LKC_ID $LKC_MEMORY_LIMIT" >> %s; for f in memory.memsw.limit_in_bytes memory.limit_in_bytes memory.max memory.high; do [ ! -e $LKC_CGROUP/$f ] || echo %d > $LKC_CGROUP/$f; done`, out, 8*oomLimit)
	id, cgroup := d.oomContainer(map[string]string{"org.lkc.oom-policy": "notify:" + handler})
	var lat, held []float64
	for i := 0; i < rounds(10, 4); i++ {
		n := len(d.policyEvents(id))
		r, start := d.allocate(id)
		if r.code != 0 {
			t.Fatalf("allocation %d with a handler that raises the limit: %v; events %v", i, r, d.policyEvents(id))
		}
		ev := d.event(id, "policy-notify", n)
		lat = append(lat, actionMs(ev, start))
		held = append(held, eventData(ev)["ms"].(float64))
		d.event(id, "oom-resolved", n)
		setLimit(t, cgroup, oomLimit)
	}
	t.Logf("notify: allocation start -> handler started: %s", medianP90(lat))
	t.Logf("notify: notification read -> handler started: %s", medianP90(held))
	b, _ := os.ReadFile(out)
	if want := fmt.Sprintf("%s %s %d\n", id, id, oomLimit); !strings.HasPrefix(string(b), want) {
		t.Errorf("handler output %q, want lines %q", b, want)
	}
}

// TestOOMNotifyHangs: a handler that never returns is killed at the
// deadline and the fallback acts; with fallback kernel the kernel's OOM
// killer is back on and kills.
func TestOOMNotifyHangs(t *testing.T) {
	for _, fallback := range []string{"kill-largest", "kernel"} {
		t.Run(fallback, func(t *testing.T) {
			d := newDaemonEnv(t)
			mark := filepath.Join(t.TempDir(), "pid")
			// The emulated v2 VM takes up to half a second to start the
			// handler's shell: a longer deadline there lets it run.
			deadline := 500 * time.Millisecond
			if cgroupV2() {
				deadline = 2 * time.Second
			}
			id, cgroup := d.oomContainer(map[string]string{
				"org.lkc.oom-policy":   "notify:echo $$ > " + mark + "; exec sleep 1000",
				"org.lkc.oom-fallback": fallback,
				"org.lkc.oom-deadline": deadline.String(),
			})
			r, start := d.allocate(id)
			if r.code != 137 {
				t.Fatalf("want the allocator killed after the deadline, got %v", r)
			}
			ev := d.event(id, "policy-fallback", 0)
			if ms := actionMs(ev, start); ms < float64(deadline.Milliseconds()) || ms > float64(deadline.Milliseconds())+2500 {
				t.Errorf("fallback %.0f ms after the allocation started, want just past the %v deadline", ms, deadline)
			}
			b, _ := os.ReadFile(mark)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			if pid == 0 {
				t.Fatalf("the handler did not run")
			}
			waitFor(t, func() bool { return unix.Kill(pid, 0) == unix.ESRCH }, "the hanging handler killed and reaped")
			if st := d.state(id)["status"]; st != "running" {
				t.Errorf("container after the fallback: %v, want running", st)
			}
			waitFor(t, func() bool { return oomDisabled(cgroup) }, "the OOM killer off again after the hold")
		})
	}
}

// TestOOMHeldAcrossWorkerKill: the worker is stopped, the container runs
// out of memory and is held, the worker is SIGKILLed: its successor finds
// the hold (no event reaches it) and acts on it.
func TestOOMHeldAcrossWorkerKill(t *testing.T) {
	requireOOMHold(t)
	d := newDaemonEnv(t)
	id, cgroup := d.oomContainer(map[string]string{"org.lkc.oom-policy": "kill-largest"})
	worker := d.status().WorkerPid
	if err := unix.Kill(worker, unix.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	done := make(chan result, 1)
	go func() { r, _ := d.allocate(id); done <- r }()
	waitFor(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(cgroup, "memory.oom_control"))
		return strings.Contains(string(b), "under_oom 1")
	}, "the container held")
	killed := time.Now()
	kill9(t, worker)
	select {
	case r := <-done:
		if r.code != 137 {
			t.Fatalf("allocator: %v, want SIGKILLed by the successor", r)
		}
	case <-time.After(settle):
		t.Fatalf("the successor did not act within %v", settle)
	}
	t.Logf("worker SIGKILL -> allocator killed by the successor: %v", time.Since(killed))
	if st := d.state(id)["status"]; st != "running" {
		t.Errorf("container: %v, want running", st)
	}
}

// TestOOMBadAnnotations: invalid values fail create in one line naming the
// annotation, start no daemon and leave nothing.
func TestOOMBadAnnotations(t *testing.T) {
	d := newDaemonEnv(t)
	for k, v := range map[string]string{
		"org.lkc.oom-policy":   "grow:lots",
		"org.lkc.oom-fallback": "notify:true",
		"org.lkc.oom-deadline": "soon",
	} {
		id := d.id()
		b := d.bundle([]string{"true"}, func(s *specs.Spec) { s.Annotations = map[string]string{k: v} })
		d.failLkc(strings.ReplaceAll(k, ".", `\.`), "run", "--bundle", b, id)
		if _, err := os.Stat(filepath.Join(d.root, id)); err == nil {
			t.Errorf("refused create left %s behind", id)
		}
	}
	if pids := d.processes(); len(pids) != 0 {
		t.Errorf("a refused create started a daemon: %v", pids)
	}
}

// TestOOMDaemonStopGivesBackToKernel: `lkc daemon stop` turns the kernel's
// OOM killer back on in every armed container: none is held waiting for a
// daemon that is gone.
func TestOOMDaemonStopGivesBackToKernel(t *testing.T) {
	d := newDaemonEnv(t)
	id, cgroup := d.oomContainer(map[string]string{"org.lkc.oom-policy": "kill-newest"})
	d.mustLkc("daemon", "stop")
	if oomDisabled(cgroup) {
		t.Fatalf("the OOM killer is still off after daemon stop")
	}
	if r, _ := d.allocate(id); r.code != 137 {
		t.Errorf("allocation without a daemon: %v, want the kernel's OOM kill", r)
	}
}

// TestOOMCheckpoint: a container whose init outgrows its limit is
// frozen, given headroom, dumped and stopped (v1 held at the limit, v2
// throttled at memory.high, before memory.max); `lkc restore` with a
// larger limit brings it back, and its allocation goes on from where it
// was to the full 64 MiB.
func TestOOMCheckpoint(t *testing.T) {
	requireCriu(t)
	d := newDaemonEnv(t)
	// The result goes to a name of this test's own: the copied rootfs
	// carries the mount points other tests' containers made in the shared
	// one (counter's /out directory, where awk cannot write).
	root := d.writableRootfs()
	images := filepath.Join(t.TempDir(), "oom")
	script := `while [ ! -e /armed ]; do sleep 0.05; done; exec awk 'BEGIN { s = "x"; for (i = 0; i < 26; i++) s = s s; print length(s) > "/oom-result" }' 2>/oom-stderr`
	var spec *specs.Spec
	b := d.bundle([]string{"sh", "-c", script}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = root, false
		s.Annotations = map[string]string{"org.lkc.oom-policy": "checkpoint:" + images}
		s.Linux.Resources = &specs.LinuxResources{Memory: memoryOnly(oomLimit)}
		spec = s
	})
	id := d.id()
	d.mustLkc("run", "-d", "--bundle", b, id)
	t.Cleanup(func() { d.lkc("delete", "--force", id) })
	var st struct {
		CgroupPaths map[string]string `json:"cgroupPaths"`
	}
	raw, _ := os.ReadFile(filepath.Join(d.root, id, "state.json"))
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	cgroup := st.CgroupPaths["memory"]
	if cgroupV2() {
		cgroup = st.CgroupPaths[""]
	}
	waitFor(t, func() bool { return oomDisabled(cgroup) }, "the daemon to turn the OOM killer off")
	start := time.Now()
	if err := os.WriteFile(filepath.Join(root, "armed"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The dump's lkc checkpoint has exited (the daemon logs it) before the
	// restore makes a cgroup at the same path.
	waitFor(t, func() bool {
		log, _ := os.ReadFile(filepath.Join(d.dir, "daemon.log"))
		return strings.Contains(string(log), "container "+id+": checkpointed to ") && d.lkc("state", id).code != 0
	}, "the checkpoint to stop the container")
	t.Logf("allocation start -> container dumped and stopped: %v", time.Since(start))
	logCheckpointSteps(t, d.dir, id)
	image := d.checkOOMImage(images, id)
	if out, err := os.ReadFile(filepath.Join(root, "oom-result")); err == nil {
		log, _ := os.ReadFile(filepath.Join(d.dir, "daemon.log"))
		t.Fatalf("the allocation finished before the checkpoint (%q); daemon log:\n%s", out, log)
	}
	big := int64(8 * oomLimit)
	spec.Linux.Resources = &specs.LinuxResources{Memory: memoryOnly(big)}
	d.mustLkc("restore", "-d", "--bundle", d.writeBundle(spec), "--image-path", image, id)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, _ := os.ReadFile(filepath.Join(root, "oom-result"))
		if string(out) == "67108864\n" {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(d.dir, "daemon.log"))
			stderr, _ := os.ReadFile(filepath.Join(root, "oom-stderr"))
			t.Fatalf("the restored allocator did not finish its 64 MiB (out %q, stderr %q, %v); daemon log:\n%s", out, stderr, d.lkc("state", id), log)
		}
	}
}

// TestOOMCheckpointFailsOver: a dump that fails (CRIU is /bin/false
// here) thaws the container and the fallback kills the allocator, not
// another raise of the limit; the limit the dump's headroom raised comes
// back; the container runs on, and the worker too.
func TestOOMCheckpointFailsOver(t *testing.T) {
	t.Setenv("LKC_CRIU", "/bin/false") // inherited by the daemon it autostarts
	d := newDaemonEnv(t)
	id, cgroup := d.oomContainer(map[string]string{
		"org.lkc.oom-policy":   "checkpoint:" + t.TempDir(),
		"org.lkc.oom-fallback": "kill-largest",
	})
	worker := d.status().WorkerPid
	if r, _ := d.allocate(id); r.code != 137 {
		t.Fatalf("allocator: %v, want the fallback's SIGKILL; events %v", r, d.policyEvents(id))
	}
	if data := eventData(d.event(id, "policy-kill", 0)); data["comm"] != "awk" {
		t.Errorf("policy-kill %v, want awk", data)
	}
	failed := false
	for _, ev := range d.policyEvents(id) {
		failed = failed || ev["type"] == "policy-checkpoint" && eventData(ev)["result"] == "failed"
	}
	if !failed {
		t.Errorf("no policy-checkpoint failed event: %v", d.policyEvents(id))
	}
	if st := d.state(id)["status"]; st != "running" {
		t.Errorf("container after the failed dump: %v, want running (thawed)", st)
	}
	waitFor(t, func() bool { return readLimit(cgroup) == oomLimit }, "the limit back at 32 MiB")
	if w := d.status().WorkerPid; w != worker {
		t.Errorf("the worker changed from %d to %d (it died)", worker, w)
	}
}

// logCheckpointSteps reports, from the daemon's log (the container's own
// event log goes with it), how long after the hold was seen the freeze
// and the dump started.
func logCheckpointSteps(t *testing.T, dir, id string) {
	log, _ := os.ReadFile(filepath.Join(dir, "daemon.log"))
	for _, l := range strings.Split(string(log), "\n") {
		_, js, ok := strings.Cut(l, "oom: {")
		if !ok {
			continue
		}
		var ev map[string]any
		if json.Unmarshal([]byte("{"+js), &ev) == nil && ev["id"] == id && ev["type"] == "policy-checkpoint" {
			data := eventData(ev)
			t.Logf("checkpoint: held -> %v: %v ms", data["result"], data["ms"])
		}
	}
}

// TestOOMPressureTrigger: on cgroup v2 with PSI the daemon writes a
// trigger on the container's memory.pressure (it holds the file open)
// and acts on the container that stalls at memory.high.
func TestOOMPressureTrigger(t *testing.T) {
	if !cgroupV2() {
		t.Skip("PSI triggers on a container's memory.pressure need cgroup v2")
	}
	d := newDaemonEnv(t)
	id, cgroup := d.oomContainer(map[string]string{"org.lkc.oom-policy": "kill-largest"})
	if _, err := os.Stat(filepath.Join(cgroup, "memory.pressure")); err != nil {
		t.Skipf("no PSI in this kernel: %v", err)
	}
	worker := d.status().WorkerPid
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", worker))
	open := false
	for _, fd := range fds {
		if l, _ := os.Readlink(fd); l == filepath.Join(cgroup, "memory.pressure") {
			open = true
		}
	}
	if !open {
		log, _ := os.ReadFile(filepath.Join(d.dir, "daemon.log"))
		t.Fatalf("the worker has no trigger on %s/memory.pressure; daemon log:\n%s", cgroup, log)
	}
	if r, _ := d.allocate(id); r.code != 137 {
		t.Fatalf("want the allocator SIGKILLed (137), got %v; events %v", r, d.policyEvents(id))
	}
	t.Logf("oom-held: %v", eventData(d.event(id, "oom-held", 0)))
}

// TestOOMIdleCost measures the worker's CPU and RSS with many idle armed
// containers, then with 20 of them (fewer if there are fewer) under
// memory pressure: a loop in each that outgrows the limit every half
// second, killed by kill-largest each time (LKC_OOM_BENCH=<count>;
// skipped otherwise: it takes minutes on a shared host).
func TestOOMIdleCost(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LKC_OOM_BENCH"))
	if n == 0 {
		t.Skip("set LKC_OOM_BENCH=<containers> to measure")
	}
	d := newDaemonEnv(t)
	b := d.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.oom-policy": "kill-largest"}
		s.Linux.Resources = &specs.LinuxResources{Memory: memoryOnly(oomLimit)}
	})
	ids := make([]string, n)
	for i := range ids {
		ids[i] = d.id()
		id := ids[i]
		t.Cleanup(func() { d.lkc("delete", "--force", id) })
	}
	parallel(4, ids, func(id string) {
		if r := d.lkc("run", "-d", "--bundle", b, id); r.code != 0 {
			t.Errorf("run %s: %v", id, r)
		}
	})
	if t.Failed() {
		return
	}
	worker := d.status().WorkerPid
	const window = 20 * time.Second
	measure := func(what string) {
		time.Sleep(2 * time.Second)
		c0, _ := procCPU(worker)
		time.Sleep(window)
		c1, rss := procCPU(worker)
		t.Logf("%s: worker CPU %.2f%% of one CPU over %v, RSS %d kB", what, float64(c1-c0)/100/window.Seconds()*100, window, rss)
	}
	measure(fmt.Sprintf("%d idle armed containers", n))
	hot := ids[:min(20, n)]
	before := map[string]int{}
	for _, id := range hot {
		before[id] = len(d.policyEvents(id))
		d.mustLkc("exec", "-d", id, "sh", "-c", `while :; do awk 'BEGIN { s = "x"; for (i = 0; i < 26; i++) s = s s }'; sleep 0.5; done`)
	}
	measure(fmt.Sprintf("%d containers, %d of them outgrowing their limit every 0.5 s", n, len(hot)))
	var held []float64
	for _, id := range hot {
		for _, ev := range d.policyEvents(id)[before[id]:] {
			if ev["type"] == "policy-kill" {
				held = append(held, eventData(ev)["ms"].(float64))
			}
		}
	}
	if len(held) == 0 {
		t.Fatalf("no policy-kill under pressure")
	}
	t.Logf("under pressure: notification read -> SIGKILL: %s", medianP90(held))
}

// parallel runs f on every id, k at a time.
func parallel(k int, ids []string, f func(string)) {
	ch := make(chan string)
	var wg sync.WaitGroup
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ch {
				f(id)
			}
		}()
	}
	for _, id := range ids {
		ch <- id
	}
	close(ch)
	wg.Wait()
}

// procCPU reads a process's CPU time (clock ticks, user and system) and
// its resident memory (kB).
func procCPU(pid int) (ticks, rssKB int64) {
	stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	f := strings.Fields(string(stat)[strings.LastIndexByte(string(stat), ')')+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			fmt.Sscan(v, &rssKB)
		}
	}
	return u + s, rssKB
}

// TestOOMUpdateMovesHigh: on cgroup v2, `lkc update --memory` of an
// armed container moves the memory.high the daemon set with the new
// limit, so the policy still acts a headroom below the limit.
func TestOOMUpdateMovesHigh(t *testing.T) {
	if !cgroupV2() {
		t.Skip("memory.high is the v2 arming")
	}
	d := newDaemonEnv(t)
	id, cgroup := d.oomContainer(map[string]string{"org.lkc.oom-policy": "kill-largest"})
	for _, limit := range []int64{4 * oomLimit, 2 * oomLimit} {
		d.mustLkc("update", "--memory", strconv.FormatInt(limit, 10), id)
		want := strconv.FormatInt(limit-max(limit/16, 4<<20), 10)
		waitFor(t, func() bool {
			b, _ := os.ReadFile(filepath.Join(cgroup, "memory.high"))
			return strings.TrimSpace(string(b)) == want
		}, "memory.high "+want+" after update --memory "+strconv.FormatInt(limit, 10))
	}
}

// TestOOMGroupPolicy: a resource group created with --oom-policy is armed
// by the daemon (started by the create); a process in it that outgrows the
// group's limit is killed by the policy, an event in the group's log;
// update --oom-policy kernel gives the group back to the kernel; a
// checkpoint policy is refused in one line and leaves no group.
func TestOOMGroupPolicy(t *testing.T) {
	g := newGroupEnv(t)
	g.daemon() // started on demand by the policy
	g.failLkc(`--oom-policy the checkpoint policy is for containers`, "group", "create", "bad", "--oom-policy", "checkpoint")
	g.assertNone("a refused create")
	g.mustLkc("group", "create", "hog", "--memory", strconv.Itoa(oomLimit), "--oom-policy", "kill-largest")
	cgroup := filepath.Join("/sys/fs/cgroup", g.parent, "hog")
	if !cgroupV2() {
		cgroup = filepath.Join("/sys/fs/cgroup/memory", g.parent, "hog")
	}
	waitFor(t, func() bool { return oomDisabled(cgroup) }, "the daemon to arm the group")
	g.failLkc("no such group", "group", "events", "nosuch")
	_, stream := g.jsonStream("group", "events", "--follow", "hog")
	// On v2 an allocator that outruns the policy to memory.max is the
	// kernel's (docs/oom.md): the policy then kills nobody (the group's
	// shell, left the largest, is no allocator), and the allocation is
	// tried again until the policy acts first.
	var kill map[string]any
	for try := 1; kill == nil; try++ {
		kernelKills := oomKills(cgroup)
		r := g.lkc("group", "exec", "hog", "--", "sh", "-c", `awk 'BEGIN { s = "x"; for (i = 0; i < 26; i++) s = s s; print length(s) }'; echo rc=$?`)
		if !strings.Contains(r.stdout, "rc=137") {
			t.Fatalf("allocator in the group: %v, want it SIGKILLed", r)
		}
		waitFor(t, func() bool {
			b, _ := os.ReadFile(filepath.Join(g.defs, "hog.events.jsonl"))
			for _, l := range strings.Split(string(b), "\n") {
				var ev map[string]any
				if json.Unmarshal([]byte(l), &ev) == nil && ev["type"] == "policy-kill" {
					kill = eventData(ev)
					return true
				}
			}
			return try < 3 && oomKills(cgroup) > kernelKills
		}, "a policy-kill event in the group's log")
		if kill == nil {
			t.Logf("allocation %d: the kernel's OOM killer took the allocator at memory.max first", try)
		}
	}
	if kill["comm"] != "awk" || kill["policy"] != "kill-largest" {
		t.Errorf("policy-kill %v, want awk by kill-largest", kill)
	}
	seen := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for !seen["policy-kill"] || !seen["oom-held"] {
		select {
		case ev := <-stream:
			if ev["id"] != "hog" {
				t.Fatalf("lkc group events --follow hog printed %v, want the id hog", ev)
			}
			seen[fmt.Sprint(ev["type"])] = true
		case <-deadline:
			t.Fatalf("lkc group events --follow showed %v, want oom-held and policy-kill", seen)
		}
	}
	var logged []string
	for _, l := range strings.Split(strings.TrimSpace(g.mustLkc("group", "events", "hog")), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev["id"] != "hog" {
			t.Fatalf("lkc group events hog printed %q, want events of hog", l)
		}
		logged = append(logged, fmt.Sprint(ev["type"]))
	}
	if !strings.Contains(strings.Join(logged, " "), "oom-held policy-kill") {
		t.Errorf("lkc group events hog printed %v, want oom-held then policy-kill", logged)
	}
	g.mustLkc("group", "update", "hog", "--oom-policy", "kernel")
	waitFor(t, func() bool { return !oomDisabled(cgroup) }, "the group given back to the kernel")
	g.mustLkc("group", "delete", "hog")
	end := time.After(5 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-stream:
		case <-end:
			t.Fatalf("lkc group events --follow still runs 5 s after the group was deleted")
		}
	}
	if _, err := os.Stat(filepath.Join(g.defs, "hog.events.jsonl")); !os.IsNotExist(err) {
		t.Errorf("the group's event log after delete: %v, want it gone", err)
	}
}

// TestOOMGroupFallbackDeadline: a group's own --oom-fallback and
// --oom-deadline are stored in its definition and used: a notify handler
// that hangs is overridden at the group's deadline (not the host's 5 s) by
// the group's fallback (not the host's kill-largest). Bad values are one
// line and leave nothing, on create and on update.
func TestOOMGroupFallbackDeadline(t *testing.T) {
	g := newGroupEnv(t)
	g.daemon() // started on demand by the policy
	g.failLkc(`--oom-deadline "0": use a positive duration`, "group", "create", "bad", "--oom-policy", "kill-largest", "--oom-deadline", "0")
	g.failLkc(`--oom-fallback "grow:1G": use kernel, kill-largest or kill-newest`, "group", "create", "bad", "--oom-fallback", "grow:1G")
	g.assertNone("a refused create")
	deadline := 500 * time.Millisecond
	if cgroupV2() {
		deadline = 2 * time.Second // the emulated VM starts the handler's shell slowly
	}
	g.mustLkc("group", "create", "slow", "--memory", strconv.Itoa(oomLimit), "--oom-policy", "notify:exec sleep 1000",
		"--oom-fallback", "kill-newest", "--oom-deadline", deadline.String())
	g.failLkc(`--oom-deadline "soon": use a positive duration`, "group", "update", "slow", "--oom-deadline", "soon")
	var defs []map[string]any
	if err := json.Unmarshal([]byte(g.mustLkc("group", "list", "--json")), &defs); err != nil || len(defs) != 1 {
		t.Fatalf("group list --json: %v %v", defs, err)
	}
	if defs[0]["oomFallback"] != "kill-newest" || defs[0]["oomDeadline"] != deadline.String() {
		t.Fatalf("definition %v, want oomFallback kill-newest and oomDeadline %v (a refused update changes nothing)", defs[0], deadline)
	}
	cgroup := filepath.Join("/sys/fs/cgroup", g.parent, "slow")
	if !cgroupV2() {
		cgroup = filepath.Join("/sys/fs/cgroup/memory", g.parent, "slow")
	}
	waitFor(t, func() bool { return oomDisabled(cgroup) }, "the daemon to arm the group")
	r := g.lkc("group", "exec", "slow", "--", "sh", "-c", `awk 'BEGIN { s = "x"; for (i = 0; i < 26; i++) s = s s; print length(s) }'; echo rc=$?`)
	if !strings.Contains(r.stdout, "rc=137") {
		t.Fatalf("allocator in the group: %v, want it SIGKILLed by the fallback", r)
	}
	at := map[string]map[string]any{}
	waitFor(t, func() bool {
		for _, l := range strings.Split(g.mustLkc("group", "events", "slow"), "\n") {
			var ev map[string]any
			if json.Unmarshal([]byte(l), &ev) == nil && at[fmt.Sprint(ev["type"])] == nil {
				at[fmt.Sprint(ev["type"])] = eventData(ev)
			}
		}
		return at["policy-fallback"] != nil && at["policy-kill"] != nil
	}, "policy-fallback and policy-kill in the group's events")
	if fb := at["policy-fallback"]; fb["to"] != "kill-newest" {
		t.Errorf("policy-fallback %v, want to kill-newest (the group's, not the host's kill-largest)", fb)
	}
	if k := at["policy-kill"]; k["comm"] != "awk" || k["policy"] != "kill-newest" {
		t.Errorf("policy-kill %v, want awk by kill-newest", k)
	}
	held := at["oom-held"]["uptime"].(float64)
	if s := at["policy-fallback"]["uptime"].(float64) - held; s < deadline.Seconds() || s > deadline.Seconds()+2 {
		t.Errorf("fallback %.2f s after the hold, want just past the group's %v deadline (the host's is 5s)", s, deadline)
	}
}

// TestOOMCheckpointDashID: the checkpoint policy dumps a container whose
// id begins with '-' (a valid id, as runc's) like any other: its `lkc
// checkpoint` is not told the id as a flag.
func TestOOMCheckpointDashID(t *testing.T) {
	requireCriu(t)
	d := newDaemonEnv(t)
	root, images, b := d.checkpointOnOOMBundle()
	id := "-" + d.id()
	d.mustLkc("run", "-d", "--bundle", b, "--", id)
	t.Cleanup(func() { d.lkc("delete", "--force", "--", id) })
	var st struct {
		CgroupPaths map[string]string `json:"cgroupPaths"`
	}
	raw, _ := os.ReadFile(filepath.Join(d.root, id, "state.json"))
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	cgroup := st.CgroupPaths["memory"]
	if cgroupV2() {
		cgroup = st.CgroupPaths[""]
	}
	waitFor(t, func() bool { return oomDisabled(cgroup) }, "the daemon to turn the OOM killer off")
	if err := os.WriteFile(filepath.Join(root, "armed"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		log, _ := os.ReadFile(filepath.Join(d.dir, "daemon.log"))
		return strings.Contains(string(log), "container "+id+": checkpointed to ") || strings.Contains(string(log), `"failed"`)
	}, "the checkpoint to end")
	if log, _ := os.ReadFile(filepath.Join(d.dir, "daemon.log")); !strings.Contains(string(log), "container "+id+": checkpointed to ") {
		dumps, _ := filepath.Glob(filepath.Join(images, "*.log"))
		var out []byte
		if len(dumps) > 0 {
			out, _ = os.ReadFile(dumps[0])
		}
		t.Fatalf("the checkpoint of %s failed: lkc checkpoint said %q; daemon log:\n%s", id, out, log)
	}
}
