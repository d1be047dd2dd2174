package oompolicy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/registry"
	"github.com/lkc-containers/lkc/internal/service"
)

// TestDumpStartedPastTheDeadline: a container found frozen at the first
// check after its deadline has its dump started, and that dump is then in
// flight: not given up at once as "not frozen" with the container thawed
// under a running `lkc checkpoint`, which would then dump and stop it
// while the fallback acts too.
func TestDumpStartedPastTheDeadline(t *testing.T) {
	dir, freezer := t.TempDir(), t.TempDir()
	state := filepath.Join(freezer, "freezer.state")
	if err := os.WriteFile(state, []byte("FROZEN\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logged []string
	s := New()
	s.epfd = -1
	s.deps = &service.Deps{Conf: hostconf.Default(), Logf: func(f string, a ...any) { logged = append(logged, f) }}
	a := &armed{e: &registry.Entry{Root: dir, ID: "c1"}, set: Settings{Deadline: time.Millisecond},
		freezer: freezer, events: filepath.Join(dir, "events.jsonl")}
	// The freeze was asked a moment ago, more than the deadline.
	a.dump = &dump{image: filepath.Join(dir, "c1-image"), started: time.Now().Add(-10 * time.Millisecond), limit: 1 << 20}
	d := a.dump
	inFlight := s.checkDump(a)
	if d.done != nil {
		t.Cleanup(func() { <-d.done }) // this test binary, run as lkc checkpoint, ends at once
	}
	if !inFlight || a.dump != d || d.proc == nil {
		t.Errorf("checkDump of a frozen container past the deadline: in flight %v, dump %p (was %p), proc %v; want the dump started and in flight", inFlight, a.dump, d, d.proc)
	}
	if data, _ := os.ReadFile(state); strings.TrimSpace(string(data)) != "FROZEN" {
		t.Errorf("freezer.state %q once the dump started, want FROZEN", data)
	}
	if events, _ := os.ReadFile(a.events); strings.Contains(string(events), `"failed"`) {
		t.Errorf("events: %s", events)
	}
}
