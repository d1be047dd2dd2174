package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// groupEnv is a test's resource groups: its own definitions directory and
// a cgroup parent beneath its own cgroup, through its own lkc.conf.
type groupEnv struct {
	*env
	defs   string // groups.dir
	parent string // groups.parent
}

// daemon is a daemon of the test's own directory, not started, stopped
// at the test's end.
func (g *groupEnv) daemon() *daemonEnv {
	d := &daemonEnv{env: g.env, dir: filepath.Join(g.t.TempDir(), "lkcd")}
	g.t.Setenv("LKC_DAEMON_DIR", d.dir)
	g.t.Cleanup(d.stop)
	return d
}

func newGroupEnv(t *testing.T) *groupEnv {
	e := newEnv(t)
	g := &groupEnv{env: e, defs: filepath.Join(t.TempDir(), "groups"), parent: e.keptCgroupParent("groups")}
	conf := filepath.Join(t.TempDir(), "lkc.conf")
	text := "groups.dir = " + g.defs + "\ngroups.parent = " + g.parent + "\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LKC_CONFIG", conf)
	return g
}

// dirs are group name's cgroup directories, one per hierarchy.
func (g *groupEnv) dirs(name string) []string {
	hs, err := ownHierarchies()
	if err != nil {
		g.t.Fatal(err)
	}
	var out []string
	for _, h := range hs {
		out = append(out, filepath.Join(h.mnt, g.parent, name))
	}
	return out
}

// file reads a control file of group name: ctrl's v1 file, or the v2 one.
func (g *groupEnv) file(name, ctrl, v1, v2 string) string {
	g.t.Helper()
	p := filepath.Join("/sys/fs/cgroup", g.parent, name, v2)
	if !cgroupV2() {
		p = filepath.Join("/sys/fs/cgroup", ctrl, g.parent, name, v1)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		g.t.Fatalf("group %s: %v", name, err)
	}
	return strings.TrimSpace(string(data))
}

// assertNone fails unless no group is defined and no group cgroup exists.
func (g *groupEnv) assertNone(after string) {
	g.t.Helper()
	filepath.WalkDir(g.defs, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".json") {
			g.t.Errorf("after %s: definition %s left behind", after, p)
		}
		return nil
	})
	for _, dir := range g.dirs("") {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.IsDir() {
				g.t.Errorf("after %s: cgroup %s left behind", after, filepath.Join(dir, e.Name()))
			}
		}
	}
}

// sleeper starts a process that the test kills at its end.
func sleeper(t *testing.T) *exec.Cmd {
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// groupCgroupOf is the memory (v1) or unified (v2) line of /proc/pid/cgroup.
func groupCgroupOf(t *testing.T, pid int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) == 3 && (parts[1] == "memory" && !cgroupV2() || parts[1] == "" && cgroupV2()) {
			return parts[2]
		}
	}
	t.Fatalf("no memory cgroup in %q", data)
	return ""
}

func TestGroupCreateUpdateSetsLimits(t *testing.T) {
	g := newGroupEnv(t)
	g.mustLkc("group", "create", "web", "--memory", "64m", "--cpus", "0.5", "--cpu-shares", "512",
		"--cpuset-cpus", "0", "--pids-limit", "20")
	checks := []struct{ ctrl, v1, v2, want string }{
		{"memory", "memory.limit_in_bytes", "memory.max", "67108864"},
		{"cpu", "cpu.cfs_quota_us", "cpu.max", "50000"},
		{"cpu", "cpu.shares", "cpu.weight", "512"},
		{"cpuset", "cpuset.cpus", "cpuset.cpus", "0"},
		{"pids", "pids.max", "pids.max", "20"},
	}
	if cgroupV2() {
		checks[1].want, checks[2].want = "50000 100000", "20" // runc's shares → weight
	}
	for _, c := range checks {
		if got := g.file("web", c.ctrl, c.v1, c.v2); got != c.want {
			t.Errorf("%s/%s = %q, want %q", c.ctrl, c.v1, got, c.want)
		}
	}
	g.mustLkc("group", "update", "web", "--memory", "128m", "--pids-limit", "30")
	if got := g.file("web", "memory", "memory.limit_in_bytes", "memory.max"); got != "134217728" {
		t.Errorf("memory after update = %q", got)
	}
	if got := g.file("web", "pids", "pids.max", "pids.max"); got != "30" {
		t.Errorf("pids.max after update = %q", got)
	}
	var list []struct {
		Name      string         `json:"name"`
		Resources map[string]any `json:"resources"`
	}
	if err := json.Unmarshal([]byte(g.mustLkc("group", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "web" || list[0].Resources["memoryLimit"] != 134217728.0 || list[0].Resources["cpuQuota"] != 50000.0 {
		t.Errorf("group list --json after update: %+v", list)
	}
	if out := g.mustLkc("group", "stats", "web", "--json"); !strings.Contains(out, `"name": "web"`) {
		t.Errorf("group stats --json: %s", out)
	}
	g.mustLkc("group", "delete", "web")
	g.assertNone("delete")
}

// TestGroupIOWeight checks --io-weight the way the host allows: written
// where the kernel has a weight file, refused (leaving nothing) where it
// has not (on v1 with mq-deadline disks there is no blkio.weight).
func TestGroupIOWeight(t *testing.T) {
	g := newGroupEnv(t)
	weight := filepath.Join("/sys/fs/cgroup/blkio", g.parent, "blkio.weight")
	if cgroupV2() {
		weight = filepath.Join("/sys/fs/cgroup", g.parent, "io.weight")
	}
	r := g.lkc("group", "create", "io", "--io-weight", "300")
	if _, err := os.Stat(weight); err != nil {
		g.checkOneLineFailure(r, `^lkc: group: group io: .*weight.*not supported`, []string{"group", "create", "--io-weight"})
		g.assertNone("a refused --io-weight")
		return
	}
	if r.code != 0 {
		t.Fatalf("group create --io-weight 300: %v", r)
	}
	got, want := g.file("io", "blkio", "blkio.weight", "io.weight"), "300"
	if cgroupV2() {
		want = "default 2930" // blkio's [10, 1000] mapped onto io's [1, 10000], as runc does
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", g.parent, "io", "io.bfq.weight")); err == nil {
			got, want = g.file("io", "", "", "io.bfq.weight"), "default 300"
		}
	}
	if got != want {
		t.Errorf("io weight %q, want %q", got, want)
	}
	g.mustLkc("group", "delete", "io")
}

func TestGroupExecJoinsAndIsOOMKilled(t *testing.T) {
	g := newGroupEnv(t)
	g.mustLkc("group", "create", "small", "--memory", "32m", "--memory-swap", "32m")
	out := g.mustLkc("group", "exec", "small", "--", "cat", "/proc/self/cgroup")
	if want := filepath.Join(g.parent, "small"); !strings.Contains(out, ":"+want+"\n") {
		t.Errorf("group exec: the command's cgroups %q, want %s", out, want)
	}
	if r := g.lkc("group", "exec", "small", "sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("group exec of exit 7: %v", r)
	}
	// dd fills a 100 MiB buffer: over the limit, the kernel kills it.
	cmd := exec.Command(g.bin, "group", "exec", "small", "--", "dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1")
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("dd of 100 MiB in a 32 MiB group: %v, want killed by SIGKILL", err)
	}
	events := g.file("small", "memory", "memory.oom_control", "memory.events")
	if !strings.Contains(events, "oom_kill 1") {
		t.Errorf("OOM counter after the kill: %q", events)
	}
	g.mustLkc("group", "delete", "small")
}

func TestGroupMoveAndDelete(t *testing.T) {
	g := newGroupEnv(t)
	g.mustLkc("group", "create", "batch")
	p := sleeper(t)
	g.mustLkc("group", "move", "batch", strconv.Itoa(p.Process.Pid))
	if got, want := groupCgroupOf(t, p.Process.Pid), filepath.Join(g.parent, "batch"); !strings.HasSuffix(got, want) {
		t.Fatalf("after move: cgroup %s, want %s", got, want)
	}
	g.failLkc(`^lkc: group: group batch holds processes \[\d+\]: group is not empty \(--force`, "group", "delete", "batch")
	g.mustLkc("group", "delete", "--force", "batch")
	if got := groupCgroupOf(t, p.Process.Pid); !movedUpTo(got, g.parent) {
		t.Errorf("after delete --force: cgroup %s, want the group's parent %s", got, g.parent)
	}
	if err := p.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the moved process did not survive delete --force: %v", err)
	}
	g.assertNone("delete --force")
	p.Process.Kill()
	p.Wait()
}

// TestGroupMoveRefusesContainerProcess moves a container's init into a
// group: refused with one line, and it stays in the container's cgroup in
// every hierarchy.
func TestGroupMoveRefusesContainerProcess(t *testing.T) {
	g := newGroupEnv(t)
	g.mustLkc("group", "create", "batch")
	_, init := g.runningPid(func(s *specs.Spec) { s.Linux.CgroupsPath = g.cgroupParent("ctr") })
	want := cgroupLines(t, init)
	g.failLkc(`^lkc: group: pid \d+: in another pid namespace \(a container's\)`, "group", "move", "batch", strconv.Itoa(init))
	if got := cgroupLines(t, init); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after a refused move the container's init is in %v, want %v", got, want)
	}
	g.failLkc(`^lkc: group: pid \d+: no such process$`, "group", "move", "batch", "4194304")
}

func TestGroupNested(t *testing.T) {
	g := newGroupEnv(t)
	g.failLkc(`^lkc: group: group a/b: parent group a does not exist`, "group", "create", "a/b")
	g.mustLkc("group", "create", "a", "--memory", "64m")
	g.mustLkc("group", "create", "a/b", "--memory", "32m")
	if got := g.file("a/b", "memory", "memory.limit_in_bytes", "memory.max"); got != "33554432" {
		t.Errorf("a/b memory limit %q", got)
	}
	p := sleeper(t)
	g.mustLkc("group", "move", "a/b", strconv.Itoa(p.Process.Pid))
	if got := groupCgroupOf(t, p.Process.Pid); !strings.HasSuffix(got, g.parent+"/a/b") {
		t.Errorf("moved into a/b: cgroup %s", got)
	}
	g.failLkc(`^lkc: group: group a has child groups \[a/b\]`, "group", "delete", "--force", "a")
	g.mustLkc("group", "delete", "--force", "a/b")
	if got := groupCgroupOf(t, p.Process.Pid); !movedUpTo(got, g.parent+"/a") {
		t.Errorf("a/b deleted with --force: cgroup %s, want a", got)
	}
	p.Process.Kill()
	p.Wait()
	waitEmpty(t, g.dirs("a"))
	g.mustLkc("group", "delete", "a")
	g.assertNone("deleting a/b and a")
}

// movedUpTo reports whether a process that delete --force moved out of
// a group with the parent cgroup parent is where it should be: in parent
// on v1; on v2 in parent or, when parent enables controllers for its
// children (and so may hold no process), the nearest ancestor that takes
// it.
func movedUpTo(got, parent string) bool {
	if !cgroupV2() {
		return got == parent
	}
	return strings.HasPrefix(parent+"/", strings.TrimSuffix(got, "/")+"/")
}

// waitEmpty waits until a killed process has left the cgroups.
func waitEmpty(t *testing.T, dirs []string) {
	for i := 0; i < 200; i++ {
		busy := false
		for _, d := range dirs {
			if data, _ := os.ReadFile(filepath.Join(d, "cgroup.procs")); len(strings.TrimSpace(string(data))) > 0 {
				busy = true
			}
		}
		if !busy {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("cgroups %v still hold processes", dirs)
}

func TestGroupBadInput(t *testing.T) {
	g := newGroupEnv(t)
	g.mustLkc("group", "create", "ok")
	cases := []struct {
		want string
		args []string
	}{
		{`group name "bad\.name"`, []string{"create", "bad.name"}},
		{`group name "\.\./x"`, []string{"create", "../x"}},
		{`group name "a//b"`, []string{"create", "a//b"}},
		{`group name "tasks"`, []string{"create", "tasks"}},
		{`--memory "10q": not a memory size`, []string{"create", "x", "--memory", "10q"}},
		{`--memory "0": use a positive size`, []string{"create", "x", "--memory", "0"}},
		{`--memory "512": below one page`, []string{"create", "x", "--memory", "512"}},
		{`--cpus "0": use a number of CPUs`, []string{"create", "x", "--cpus", "0"}},
		{`--cpus "1000": use a number of CPUs`, []string{"create", "x", "--cpus", "1000"}},
		{`--cpus "NaN": use a number of CPUs`, []string{"create", "x", "--cpus", "NaN"}},
		{`--cpu-shares "1": use a value from 2`, []string{"create", "x", "--cpu-shares", "1"}},
		{`--pids-limit "0": use a positive number`, []string{"create", "x", "--pids-limit", "0"}},
		{`--io-weight "5": use a weight from 10 to 1000`, []string{"create", "x", "--io-weight", "5"}},
		{`group x: a memory\+swap limit needs a memory limit`, []string{"create", "x", "--memory-swap", "32m"}},
		{`group x: memory\+swap limit 33554432 is below the memory limit 67108864`, []string{"create", "x", "--memory", "64m", "--memory-swap", "32m"}},
		{`group x: linux.resources.cpu.cpus "4096": 4096 is not among the allowed [0-9,-]+$`, []string{"create", "x", "--cpuset-cpus", "4096"}},
		{`group ok/x: linux.resources.cpu.cpus "0,4096": 4096 is not among the allowed [0-9,-]+$`, []string{"create", "ok/x", "--cpuset-cpus", "0,4096"}},
		{`group ok: group exists`, []string{"create", "ok"}},
		{`unknown subcommand "frob"`, []string{"frob"}},
		{`group nope: no such group`, []string{"exec", "nope", "--", "true"}},
		{`command "/no/such/cmd": no such file or directory$`, []string{"exec", "ok", "--", "/no/such/cmd"}},
		{`command "no-such-cmd-lkc": executable file not found in \$PATH$`, []string{"exec", "ok", "--", "no-such-cmd-lkc"}},
		{`command "/etc/passwd": permission denied$`, []string{"exec", "ok", "--", "/etc/passwd"}},
		{`missing command`, []string{"exec", "ok", "--"}},
		{`pid 999999999: no such process`, []string{"move", "ok", "999999999"}},
		{`PID "abc": want a positive number`, []string{"move", "ok", "abc"}},
		{`group nope: no such group`, []string{"update", "nope", "--memory", "1g"}},
		{`group nope: no such group`, []string{"delete", "nope"}},
		{`group nope: no such group`, []string{"stats", "nope"}},
	}
	for _, c := range cases {
		g.failLkc(`^lkc: group: `+c.want, append([]string{"group"}, c.args...)...)
	}
	if _, err := os.Stat(filepath.Join(g.defs, "ok")); err == nil {
		t.Errorf("the refused create of ok/x left the directory %s", filepath.Join(g.defs, "ok"))
	}
	g.mustLkc("group", "delete", "ok")
	g.assertNone("bad input")
}

// TestGroupsRecreatedByDaemon simulates a reboot (the groups' cgroups
// removed, their definitions kept): a daemon's start makes them again
// with their limits, and so does the next worker after a kill.
func TestGroupsRecreatedByDaemon(t *testing.T) {
	g := newGroupEnv(t)
	d := g.daemon()
	g.mustLkc("group", "create", "a", "--memory", "64m", "--pids-limit", "20")
	g.mustLkc("group", "create", "a/b", "--memory", "32m")
	removeDirs := func(names ...string) {
		for _, n := range names {
			for _, dir := range g.dirs(n) {
				if err := os.Remove(dir); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	removeDirs("a/b", "a")
	st := d.start()
	check := func(when string) {
		t.Helper()
		for _, c := range []struct{ name, ctrl, v1, v2, want string }{
			{"a", "memory", "memory.limit_in_bytes", "memory.max", "67108864"},
			{"a", "pids", "pids.max", "pids.max", "20"},
			{"a/b", "memory", "memory.limit_in_bytes", "memory.max", "33554432"},
		} {
			for _, dir := range g.dirs(c.name) {
				if _, err := os.Stat(dir); err != nil {
					t.Errorf("%s: cgroup of group %s: %v", when, c.name, err)
				}
			}
			if got := g.file(c.name, c.ctrl, c.v1, c.v2); got != c.want {
				t.Errorf("%s: group %s %s = %q, want %q", when, c.name, c.v1, got, c.want)
			}
		}
	}
	check("after the daemon's start")
	removeDirs("a/b")
	kill9(t, st.WorkerPid)
	if st2 := d.status(); st2.WorkerPid == st.WorkerPid {
		t.Fatalf("worker %d still answers after SIGKILL", st.WorkerPid)
	}
	check("after the worker's restart")
	g.mustLkc("group", "delete", "a/b")
	g.mustLkc("group", "delete", "a")
	g.assertNone("delete")
}

// TestGroupsReloadedByDaemon edits the definitions on disk by hand while
// the daemon runs: `lkc daemon reload` makes the cgroup of a group whose
// definition appeared, and writes the changed limits of one that exists.
func TestGroupsReloadedByDaemon(t *testing.T) {
	g := newGroupEnv(t)
	d := g.daemon()
	g.mustLkc("group", "create", "a", "--memory", "64m")
	d.start()
	def := filepath.Join(g.defs, "a.json")
	data, err := os.ReadFile(def)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), "67108864", "50331648", 1)
	if edited == string(data) {
		t.Fatalf("definition %s has no 64 MiB limit to edit:\n%s", def, data)
	}
	if err := os.WriteFile(def, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	made := strings.Replace(edited, `"a"`, `"c"`, 1)
	if err := os.WriteFile(filepath.Join(g.defs, "c.json"), []byte(made), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, dir := range g.dirs("c") {
			os.Remove(dir)
		}
	})
	g.mustLkc("daemon", "reload")
	for _, name := range []string{"a", "c"} {
		if got := g.file(name, "memory", "memory.limit_in_bytes", "memory.max"); got != "50331648" {
			t.Errorf("after the reload, group %s's memory limit is %s, want 50331648 (48 MiB)", name, got)
		}
	}
	g.mustLkc("group", "delete", "c")
	g.mustLkc("group", "delete", "a")
	g.assertNone("delete")
}

// TestGroupOOMPolicyWithoutDaemon: an OOM policy needs the daemon; with
// none running and none to start, create and update fail in one line
// before they make or change anything.
func TestGroupOOMPolicyWithoutDaemon(t *testing.T) {
	g := newGroupEnv(t)
	conf := os.Getenv("LKC_CONFIG")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("daemon.autostart = false\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("LKC_DAEMON_DIR", filepath.Join(t.TempDir(), "lkcd"))
	g.failLkc(`^lkc: group: group x: its OOM policy needs the lkc daemon: .*daemon.autostart is false`,
		"group", "create", "x", "--memory", "64m", "--oom-policy", "kill-largest")
	g.assertNone("create refused for want of a daemon")

	g.mustLkc("group", "create", "y", "--memory", "64m")
	g.failLkc(`^lkc: group: group y: its OOM policy needs the lkc daemon`,
		"group", "update", "y", "--memory", "128m", "--oom-policy", "kill-largest")
	if got := g.file("y", "memory", "memory.limit_in_bytes", "memory.max"); got != "67108864" {
		t.Errorf("memory limit %s after the refused update, want 67108864 as before", got)
	}
	var def struct {
		OOMPolicy string `json:"oomPolicy"`
	}
	data, err := os.ReadFile(filepath.Join(g.defs, "y.json"))
	if err == nil {
		err = json.Unmarshal(data, &def)
	}
	if err != nil || def.OOMPolicy != "" {
		t.Errorf("definition after the refused update: %s, %v (want no oomPolicy)", data, err)
	}
	g.mustLkc("group", "delete", "y")
	g.assertNone("delete")
}

// TestGroupMoveWaitsForDelete: a move waits for a delete under way (which
// holds the groups' lock) and then finds the group gone; it must not make
// the deleted group's cgroup again, with the process in it and no
// definition to find it by.
func TestGroupMoveWaitsForDelete(t *testing.T) {
	g := newGroupEnv(t)
	g.mustLkc("group", "create", "gone")
	p := sleeper(t)
	lock, err := os.OpenFile(filepath.Join(g.defs, ".lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	move := exec.Command(g.bin, "group", "move", "gone", strconv.Itoa(p.Process.Pid))
	var stderr strings.Builder
	move.Stderr = &stderr
	if err := move.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- move.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("group move ended (%v, %q) while a delete held the groups' lock", err, stderr.String())
	case <-time.After(300 * time.Millisecond):
	}
	// The delete: cgroups, then the definition, under the lock.
	for _, dir := range g.dirs("gone") {
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(g.defs, "gone.json")); err != nil {
		t.Fatal(err)
	}
	syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if err := <-done; err == nil || !strings.Contains(stderr.String(), "group gone: no such group") {
		t.Errorf("group move after the delete: %v, %q; want it refused: no such group", err, stderr.String())
	}
	g.assertNone("a move that waited for a delete")
}

// TestGroupsSurviveBadDefinition: one definition that cannot be read (a
// file broken by hand) is reported, and the other groups still work: the
// daemon's start makes their cgroups again, and list shows them.
func TestGroupsSurviveBadDefinition(t *testing.T) {
	g := newGroupEnv(t)
	d := g.daemon()
	g.mustLkc("group", "create", "a", "--memory", "64m")
	bad := filepath.Join(g.defs, "bad.json")
	if err := os.WriteFile(bad, []byte("{junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := g.lkc("group", "list")
	if r.code != 0 || !regexp.MustCompile(`(?m)^a\s+0\s+memory=67108864$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`^lkc: warning: group bad: definition .*bad.json: .*\n$`).MatchString(r.stderr) {
		t.Errorf("group list beside a broken definition: %v; want group a listed and one warning naming bad", r)
	}
	for _, dir := range g.dirs("a") {
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
	}
	d.start()
	if got := g.file("a", "memory", "memory.limit_in_bytes", "memory.max"); got != "67108864" {
		t.Errorf("group a's memory limit after the daemon's start: %s, want 67108864", got)
	}
	os.Remove(bad)
	g.mustLkc("group", "delete", "a")
	g.assertNone("delete")
}

// TestGroupsReloadWaitsForDelete: the daemon's re-making of the groups'
// cgroups (here a reload) waits for a delete under way, which holds the
// groups' lock, and then finds the group gone; else it would make the
// cgroup again between the delete's removal of it and of the definition.
func TestGroupsReloadWaitsForDelete(t *testing.T) {
	g := newGroupEnv(t)
	d := g.daemon()
	g.mustLkc("group", "create", "gone", "--memory", "64m")
	d.start()
	lock, err := os.OpenFile(filepath.Join(g.defs, ".lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	// The delete, half done: the cgroups are gone, the definition not yet.
	for _, dir := range g.dirs("gone") {
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
	}
	reload := make(chan result, 1)
	go func() { reload <- g.lkc("daemon", "reload") }()
	time.Sleep(300 * time.Millisecond)
	if err := os.Remove(filepath.Join(g.defs, "gone.json")); err != nil {
		t.Fatal(err)
	}
	syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if r := <-reload; r.code != 0 {
		t.Errorf("daemon reload: %v", r)
	}
	g.assertNone("a reload during a delete")
}
