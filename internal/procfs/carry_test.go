package procfs

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/state"
)

// TestCarryAcrossRestore: a container restored from a checkpoint, with a
// new init and new cgroups, shows the uptime and CPU times it had
// at the checkpoint, going on from there: 100 s run and 30 s + 4 s of CPU
// before, 10 s and 1 s of user CPU since.
func TestCarryAcrossRestore(t *testing.T) {
	f := newFixture(t)
	f.v2()
	carried, err := f.host.Carry(f.c)
	if err != nil {
		t.Fatal(err)
	}
	if carried.RanNanos != int64(100*time.Second) || fmt.Sprint(carried.UserNanos, carried.SystemNanos) != "[30000000000] [4000000000]" {
		t.Fatalf("carried %+v; want 100 s run, [30 s] user, [4 s] system", carried)
	}
	// The restore: a new cgroup, an init started now (the host booted
	// 1000 s ago: 100000 ticks).
	f.write("sys/fs/cgroup/ctr/cpu.stat", "usage_usec 1000000\nuser_usec 1000000\nsystem_usec 0\n")
	c, err := f.host.ContainerFromState(&state.State{ID: "c", InitPid: 101, InitStart: 100000, CgroupPaths: f.c.Cgroups, Carried: carried})
	if err != nil {
		t.Fatal(err)
	}
	f.c = c
	f.pass(10 * time.Second)
	if got := f.render("proc/uptime"); got != "110.00 75.00\n" {
		t.Errorf("uptime %q; want 110.00 75.00 (100 s before the checkpoint, 10 s since)", got)
	}
	stat := f.render("proc/stat")
	if want := "cpu  3100 0 400 7500 0 0 0 0 0 0\ncpu0 3100 0 400 7500 0 0 0 0 0 0\n"; !strings.HasPrefix(stat, want) {
		t.Errorf("stat starts %q; want %q", stat[:min(len(stat), 80)], want)
	}
	if btime := fmt.Sprintf("\nbtime %d\n", hostBtime(t)); !strings.Contains(stat, btime) {
		t.Errorf("stat lacks %q: btime is the host's, also after a restore", btime)
	}
	again, err := f.host.Carry(f.c)
	if err != nil || again.RanNanos != int64(110*time.Second) || again.UserNanos[0] != 31e9 || again.SystemNanos[0] != 4e9 {
		t.Errorf("a second checkpoint carries %+v, %v; want 110 s, 31 s user, 4 s system", again, err)
	}
}

// A view with another number of CPUs after the restore (a migration to a
// larger host, a changed cpuset) gets the carried times spread evenly.
func TestCarriedCPUSpreadOverOtherCPUs(t *testing.T) {
	times := &cpuTimes{user: []uint64{1, 1, 1}, system: []uint64{0, 0, 0}}
	times.add(&state.Carried{UserNanos: []uint64{5, 3}, SystemNanos: []uint64{2, 0}})
	if fmt.Sprint(times.user, times.system) != "[4 4 3] [1 1 0]" {
		t.Errorf("spread: user %v system %v; want [4 4 3] [1 1 0]", times.user, times.system)
	}
}
