package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// limited runs a detached `sleep` container whose cgroup gets limits from
// mutate's linux.resources, and returns its id.
func (e *env) limited(res specs.LinuxResources) string {
	e.t.Helper()
	b := e.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) { s.Linux.Resources = &res })
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", b, id)
	return id
}

// memoryOnly limits memory to limit bytes; where the host swaps, swap too,
// so going over the limit is an OOM kill and not a swap-out.
func memoryOnly(limit int64) *specs.LinuxMemory {
	m := &specs.LinuxMemory{Limit: &limit}
	if data, _ := os.ReadFile("/proc/swaps"); strings.Count(string(data), "\n") > 1 {
		m.Swap = &limit
	}
	return m
}

// stats returns the data of `lkc events --stats id`.
func (e *env) stats(id string) map[string]any {
	e.t.Helper()
	var ev struct {
		Type string         `json:"type"`
		ID   string         `json:"id"`
		Data map[string]any `json:"data"`
	}
	out := e.mustLkc("events", "--stats", id)
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		e.t.Fatalf("events --stats %s: %v: %q", id, err, out)
	}
	if ev.Type != "stats" || ev.ID != id || ev.Data == nil {
		e.t.Fatalf("events --stats %s: not a stats event: %q", id, out)
	}
	return ev.Data
}

// num returns the number at a dotted path in JSON data ("memory.usage.limit").
func num(t *testing.T, data map[string]any, path string) float64 {
	t.Helper()
	var cur any = data
	for _, key := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("stats %v: no %s", data, path)
		}
		cur = m[key]
	}
	f, _ := cur.(float64) // runc omits zero counters
	return f
}

// recorded returns the resources recorded in id's state file.
func (e *env) recorded(id string) map[string]any {
	e.t.Helper()
	var st struct {
		Config struct {
			Cgroup struct {
				Resources map[string]any `json:"resources"`
			} `json:"cgroup"`
		} `json:"config"`
	}
	data, err := os.ReadFile(filepath.Join(e.root, id, "state.json"))
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil {
		e.t.Fatalf("state of %s: %v", id, err)
	}
	return st.Config.Cgroup.Resources
}

const alloc48M = "dd if=/dev/zero of=/dev/null bs=48M count=1"

func TestUpdateRaisesMemoryLimitLive(t *testing.T) {
	e := newEnv(t)
	id := e.limited(specs.LinuxResources{Memory: memoryOnly(32 << 20)})
	if r := e.lkc("exec", id, "sh", "-c", alloc48M); r.code != 137 {
		t.Fatalf("48 MiB under a 32 MiB limit: want an OOM kill (exit 137), got %v", r)
	}
	e.mustLkc("update", "--memory", "128m", "--memory-swap", "128m", id)
	if got := num(t, e.stats(id), "memory.usage.limit"); got != 128<<20 {
		t.Errorf("memory limit after update = %v, want %d", got, 128<<20)
	}
	if r := e.lkc("exec", id, "sh", "-c", alloc48M); r.code != 0 {
		t.Fatalf("48 MiB under a 128 MiB limit: %v", r)
	}
	if got := e.recorded(id)["memoryLimit"]; got != float64(128<<20) {
		t.Errorf("recorded memoryLimit = %v, want %d", got, 128<<20)
	}
	// Lowering both again takes the other order on v1.
	e.mustLkc("update", "--memory", "32m", "--memory-swap", "32m", id)
	if got := num(t, e.stats(id), "memory.usage.limit"); got != 32<<20 {
		t.Errorf("memory limit after lowering = %v, want %d", got, 32<<20)
	}
}

func TestUpdatePidsLimitLive(t *testing.T) {
	e := newEnv(t)
	// lkc's own init runs Go and needs threads, so the container starts
	// with room and is squeezed live: at 2 (sleep and one more), exec's
	// fork into the container is refused.
	id := e.limited(specs.LinuxResources{Pids: &specs.LinuxPids{Limit: 50}})
	e.mustLkc("update", "--pids-limit", "2", id)
	if got := num(t, e.stats(id), "pids.limit"); got != 2 {
		t.Errorf("pids limit after update = %v, want 2", got)
	}
	fork := []string{"exec", id, "sh", "-c", "(exit 0) && echo forked"}
	if r := e.lkc(fork...); r.code == 0 {
		t.Fatalf("exec with a fork under pids.max 2 succeeded: %v", r)
	}
	e.mustLkc("update", "--pids-limit", "20", id)
	if out := e.mustLkc(fork...); out != "forked\n" {
		t.Fatalf("exec after raising pids.max printed %q", out)
	}
	// -1 lifts the limit (the kernel's "max").
	e.mustLkc("update", "--pids-limit", "-1", id)
	if out := e.mustLkc("exec", id, "cat", cgroupFile("pids", "pids.max", "pids.max")); out != "max\n" {
		t.Fatalf("pids.max after update --pids-limit -1: %q", out)
	}
}

func TestUpdateResourcesFromStdin(t *testing.T) {
	e := newEnv(t)
	id := e.limited(specs.LinuxResources{})
	cmd := exec.Command(lkcBinary, "--root", e.root, "update", "--resources", "-", id)
	cmd.Stdin = strings.NewReader(`{"memory":{"limit":100663296},"pids":{"limit":33},"cpu":{"shares":512}}`)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("update --resources -: %v: %s", err, out)
	}
	s := e.stats(id)
	if got := num(t, s, "memory.usage.limit"); got != 96<<20 {
		t.Errorf("memory limit = %v, want %d", got, 96<<20)
	}
	if got := num(t, s, "pids.limit"); got != 33 {
		t.Errorf("pids limit = %v, want 33", got)
	}
	rec := e.recorded(id)
	if rec["pidsLimit"] != float64(33) || rec["cpuShares"] != float64(512) {
		t.Errorf("recorded resources %v lack pidsLimit 33, cpuShares 512", rec)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"memory":{"limit":"lots"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	e.failLkc("--resources .*bad.json: invalid", "update", "--resources", bad, id)
}

func TestUpdateRefusesStoppedAndBadInput(t *testing.T) {
	e := newEnv(t)
	id := e.limited(specs.LinuxResources{})
	e.failLkc(`--memory "lots": not a memory size`, "update", "--memory", "lots", id)
	e.failLkc(`^lkc: update: invalid update flags: linux.resources.memory.swap 33554432 is below memory.limit 67108864`,
		"update", "--memory", "64m", "--memory-swap", "32m", id)
	check := true
	careful := e.limited(specs.LinuxResources{Memory: &specs.LinuxMemory{CheckBeforeUpdate: &check}})
	e.failLkc(`below the current usage`, "update", "--memory", "4k", careful)
	e.mustLkc("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	e.failLkc("cannot update container .*: it is stopped", "update", "--memory", "64m", id)
	e.failLkc("does not exist", "update", "--memory", "64m", "no-such-container")
}
