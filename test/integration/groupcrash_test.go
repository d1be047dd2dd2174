package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// groupLimitsDie arms the LKC_TEST_GROUP_LIMITS_DIE hook: the first lkc
// (CLI or daemon worker) to make a group's cgroup SIGKILLs itself before
// it writes the limits, or, in an update, after it wrote them and before
// the definition records them. It returns the hook's file, gone once it
// fired.
func groupLimitsDie(t *testing.T) string {
	file := filepath.Join(t.TempDir(), "die")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LKC_TEST_GROUP_LIMITS_DIE", file)
	return file
}

// memoryLimit is group name's memory limit as its cgroup has it.
func (g *groupEnv) memoryLimit(name string) string {
	p := filepath.Join("/sys/fs/cgroup", g.parent, name, "memory.max")
	if !cgroupV2() {
		p = filepath.Join("/sys/fs/cgroup/memory", g.parent, name, "memory.limit_in_bytes")
	}
	b, _ := os.ReadFile(p)
	return strings.TrimSpace(string(b))
}

// TestGroupCreateKilledGetsLimits: `lkc group create` is SIGKILLed after
// it made the group's cgroup and before it wrote the limits. The next
// group command finishes the make from its record: the limits are there
// before `group exec` runs anything in the group.
func TestGroupCreateKilledGetsLimits(t *testing.T) {
	g := newGroupEnv(t)
	die := groupLimitsDie(t)
	t.Cleanup(func() { g.lkc("group", "delete", "--force", "half") })
	r := g.lkc("group", "create", "half", "--memory", "64m")
	if _, err := os.Stat(die); r.code == 0 || !os.IsNotExist(err) {
		t.Fatalf("group create: %v, want killed by the hook (hook file: %v)", r, err)
	}
	for _, dir := range g.dirs("half") {
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("the killed create made no cgroup: %v", err)
		}
	}
	out := g.mustLkc("group", "exec", "half", "--", "cat", "/proc/self/cgroup")
	if !strings.Contains(out, g.parent+"/half") {
		t.Errorf("group exec ran in %q, want %s/half", out, g.parent)
	}
	if got := g.memoryLimit("half"); got != "67108864" {
		t.Errorf("memory limit of the half-made group after the next command: %q, want 67108864", got)
	}
	g.assertNoLimitsRecord()
	g.mustLkc("group", "delete", "half")
	g.assertNone("delete")
}

// TestGroupsRecreatedAcrossWorkerKill: the groups' cgroups were removed
// (as by a reboot) and the worker killed; its successor is SIGKILLed
// after it made one again and before it wrote its limits. The holder's
// next worker finishes the make, so the group does not come back without
// its limits.
func TestGroupsRecreatedAcrossWorkerKill(t *testing.T) {
	g := newGroupEnv(t)
	d := g.daemon()
	g.mustLkc("group", "create", "a", "--memory", "64m")
	t.Cleanup(func() { g.lkc("group", "delete", "--force", "a") })
	die := groupLimitsDie(t)
	st := d.start() // nothing to make: the hook waits
	for _, dir := range g.dirs("a") {
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
	}
	kill9(t, st.WorkerPid)
	waitFor(t, func() bool {
		_, err := os.Stat(die)
		return os.IsNotExist(err) && d.lkc("daemon", "status").code == 0
	}, "a worker to die in the make and another to serve")
	if got := g.memoryLimit("a"); got != "67108864" {
		t.Errorf("memory limit of group a after the make's kill: %q, want 67108864", got)
	}
	d.stop()
	g.mustLkc("group", "delete", "a")
	g.assertNone("delete")
}

// TestGroupUpdateKilledIsFinished: `lkc group update` is SIGKILLed after
// it wrote the new limits to the cgroup and before the definition
// recorded them. The next group command (here list, which shows the
// definitions) finishes the update from its record: the definition and
// the cgroup agree on the new limit, so neither a reload nor a reboot
// goes silently back to the old one.
func TestGroupUpdateKilledIsFinished(t *testing.T) {
	g := newGroupEnv(t)
	g.mustLkc("group", "create", "upd", "--memory", "64m")
	t.Cleanup(func() { g.lkc("group", "delete", "--force", "upd") })
	die := groupLimitsDie(t)
	r := g.lkc("group", "update", "upd", "--memory", "128m")
	if _, err := os.Stat(die); r.code == 0 || !os.IsNotExist(err) {
		t.Fatalf("group update: %v, want killed by the hook (hook file: %v)", r, err)
	}
	if got := g.memoryLimit("upd"); got != "134217728" {
		t.Fatalf("memory limit after the killed update: %q, want 134217728 (written before the kill)", got)
	}
	out := g.mustLkc("group", "list", "--json")
	if !strings.Contains(out, "134217728") {
		t.Errorf("group list after the killed update: %s, want the definition's memory limit 134217728", out)
	}
	if got := g.memoryLimit("upd"); got != "134217728" {
		t.Errorf("memory limit after the update was finished: %q, want 134217728", got)
	}
	g.assertNoLimitsRecord()
	g.mustLkc("group", "delete", "upd")
	g.assertNone("delete")
}

// TestGroupDeleteKilledIsFinished: `lkc group delete` is SIGKILLed
// (LKC_TEST_GROUP_DELETE_DIE) after it removed the group's cgroup and
// before it removed the definition. The next daemon start, which makes
// the cgroups of defined groups, finishes the delete from its record
// instead of making the deleted group's cgroup again.
func TestGroupDeleteKilledIsFinished(t *testing.T) {
	g := newGroupEnv(t)
	d := g.daemon()
	g.mustLkc("group", "create", "del", "--memory", "64m")
	t.Cleanup(func() { g.lkc("group", "delete", "--force", "del") })
	file := filepath.Join(t.TempDir(), "die")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LKC_TEST_GROUP_DELETE_DIE", file)
	r := g.lkc("group", "delete", "del")
	if _, err := os.Stat(file); r.code == 0 || !os.IsNotExist(err) {
		t.Fatalf("group delete: %v, want killed by the hook (hook file: %v)", r, err)
	}
	if _, err := os.Stat(filepath.Join(g.defs, "del.json")); err != nil {
		t.Fatalf("the killed delete removed the definition: %v", err)
	}
	d.start()
	for _, dir := range g.dirs("del") {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("cgroup %s after the daemon's start: %v, want none (the group was being deleted)", dir, err)
		}
	}
	if r := g.lkc("group", "list"); strings.Contains(r.stdout, "del") {
		t.Errorf("group list after the daemon's start: %q, want no group del", r.stdout)
	}
	g.assertNoLimitsRecord()
	d.stop()
	g.assertNone("the finished delete")
}

// assertNoLimitsRecord checks that no create, update or delete is left
// unfinished in the groups' limits record.
func (g *groupEnv) assertNoLimitsRecord() {
	g.t.Helper()
	if _, err := os.Stat(filepath.Join(g.defs, ".limits.json")); !os.IsNotExist(err) {
		g.t.Errorf("the limits record is left: %v", err)
	}
}
