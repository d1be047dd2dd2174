package integration

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestEventsStats(t *testing.T) {
	e := newEnv(t)
	id, _ := e.counter()
	s := e.stats(id)
	if got := num(t, s, "memory.usage.usage"); got <= 0 {
		t.Errorf("memory usage %v, want > 0", got)
	}
	if got := num(t, s, "pids.current"); got < 1 {
		t.Errorf("pids current %v, want >= 1", got)
	}
	if got := num(t, s, "cpu.usage.total"); got <= 0 {
		t.Errorf("cpu usage %v, want > 0", got)
	}
	huge, ok := s["hugetlb"].(map[string]any)
	if !ok {
		t.Errorf("stats %v lack runc's hugetlb object", s)
	}
	// This v1 host mounts no hugetlb hierarchy; the v2 VM has the controller.
	if _, has2MB := huge["2MB"]; cgroupV2() && !has2MB {
		t.Errorf("v2 hugetlb stats lack the 2MB page size: %v", huge)
	}
	// runc reports the cpuset settings and the per-CPU kernel and user
	// times on v1 (cpuacct.usage_percpu_sys and _user).
	if cpuset, ok := s["cpuset"].(map[string]any); !ok || !cgroupV2() && (cpuset["cpus"] == nil || cpuset["mems"] == nil) {
		t.Errorf("stats lack runc's cpuset object (with cpus and mems on v1): %v", s["cpuset"])
	}
	usage, _ := s["cpu"].(map[string]any)["usage"].(map[string]any)
	if kernel, _ := usage["percpu_kernel"].([]any); !cgroupV2() && len(kernel) == 0 {
		t.Errorf("v1 cpu usage lacks runc's percpu_kernel: %v", usage)
	}
	// runc refuses an interval that is not positive, with --stats too.
	for given, shown := range map[string]string{"0": "0s", "-1s": "-1s"} {
		e.failLkc(`^lkc: events: --interval `+shown+`: must be positive$`, "events", "--stats", "--interval", given, id)
	}
	e.mustLkc("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	e.failLkc("it is stopped", "events", "--stats", id)
}

// eventStream starts `lkc events` on id and returns the command and its
// events, one per JSON line; the channel closes when lkc's stdout does.
func (e *env) eventStream(id string, args ...string) (*exec.Cmd, <-chan map[string]any) {
	e.t.Helper()
	return e.jsonStream(append(append([]string{"events"}, args...), id)...)
}

// jsonStream starts lkc with args and returns the command and the JSON
// objects it prints, one per line, as eventStream does.
func (e *env) jsonStream(args ...string) (*exec.Cmd, <-chan map[string]any) {
	e.t.Helper()
	cmd := exec.Command(lkcBinary, append([]string{"--root", e.root}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	events := make(chan map[string]any, 100)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				ev = map[string]any{"type": "bad JSON: " + sc.Text()}
			}
			events <- ev
		}
	}()
	return cmd, events
}

func TestEventsStreamReportsOOMAndEnds(t *testing.T) {
	e := newEnv(t)
	id := e.limited(specs.LinuxResources{Memory: memoryOnly(32 << 20)})
	cmd, events := e.eventStream(id, "--interval", "200ms")
	next := func(want string) map[string]any {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("event stream ended before a %s event", want)
				}
				if ev["id"] != id && ev["type"] != nil {
					t.Fatalf("event %v is not about %s", ev, id)
				}
				if ev["type"] == want {
					return ev
				}
			case <-deadline:
				t.Fatalf("no %s event in 60s", want)
			}
		}
	}
	next("stats")
	if r := e.lkc("exec", id, "dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"); r.code != 137 {
		t.Fatalf("100 MiB under a 32 MiB limit: want an OOM kill (exit 137), got %v", r)
	}
	next("oom")
	e.mustLkc("kill", id, "KILL")
	done := make(chan error, 1)
	go func() {
		for range events {
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("events after the container stopped: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("events still runs 60s after the container stopped")
	}
}
