package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/cgroups"
)

// rulesEnv is a test's rules engine: its own daemon, rules file, groups
// and a scope cgroup beneath its own cgroup (rules.scope), so that the
// engine moves only the processes the test starts there.
type rulesEnv struct {
	*daemonEnv
	rules  string // the rules file (rules.files)
	scope  string // rules.scope: absolute cgroup path
	parent string // groups.parent
	tmp    string
}

func newRulesEnv(t *testing.T, rulesText string) *rulesEnv {
	e := newEnv(t)
	r := &rulesEnv{daemonEnv: &daemonEnv{env: e, dir: filepath.Join(t.TempDir(), "lkcd")}, tmp: t.TempDir()}
	r.scope, r.parent = e.keptCgroupParent("scope"), e.keptCgroupParent("groups")
	m, err := cgroups.New(cgroups.DefaultHost, r.scope)
	if err == nil {
		err = m.Create() // with cpuset's cpus and mems, so it takes processes
	}
	if err != nil {
		t.Fatal(err)
	}
	r.rules = filepath.Join(r.tmp, "rules.conf")
	r.writeRules(rulesText)
	conf := filepath.Join(r.tmp, "lkc.conf")
	text := fmt.Sprintf("groups.dir = %s\ngroups.parent = %s\nrules.files = %s\nrules.scope = %s\n",
		filepath.Join(r.tmp, "groups"), r.parent, r.rules, r.scope)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LKC_CONFIG", conf)
	t.Setenv("LKC_DAEMON_DIR", r.dir)
	t.Cleanup(func() {
		r.stop()
		r.killAll()
	})
	return r
}

// writeRules replaces the rules file as an editor does (write, rename).
func (r *rulesEnv) writeRules(text string) {
	tmp := r.rules + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(tmp, r.rules); err != nil {
		r.t.Fatal(err)
	}
}

// dirsOf is an absolute cgroup path's directory in each hierarchy.
func (r *rulesEnv) dirsOf(path string) []string {
	hs, err := ownHierarchies()
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, h := range hs {
		out = append(out, filepath.Join(h.mnt, path))
	}
	return out
}

// procsUnder lists the processes in the cgroup trees at path.
func (r *rulesEnv) procsUnder(path string) []int {
	seen := map[int]bool{}
	var out []int
	for _, d := range r.dirsOf(path) {
		filepath.WalkDir(d, func(p string, de os.DirEntry, err error) error {
			if err == nil && de.IsDir() {
				data, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
				for _, f := range strings.Fields(string(data)) {
					if pid, _ := strconv.Atoi(f); pid > 0 && !seen[pid] {
						seen[pid] = true
						out = append(out, pid)
					}
				}
			}
			return nil
		})
	}
	return out
}

// killAll kills every process in the test's scope and groups (only the
// test's own are there) until none is left.
func (r *rulesEnv) killAll() {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		pids := append(r.procsUnder(r.scope), r.procsUnder(r.parent)...)
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Errorf("processes left in the test's cgroups: %v", append(r.procsUnder(r.scope), r.procsUnder(r.parent)...))
}

// inScope starts args inside the scope cgroup: a shell joins it in
// every hierarchy, then execs args (the exec the engine sees).
func (r *rulesEnv) inScope(args ...string) *exec.Cmd {
	r.t.Helper()
	return r.inCgroup(r.scope, args...)
}

// inCgroup is inScope in the cgroup at path.
func (r *rulesEnv) inCgroup(path string, args ...string) *exec.Cmd {
	r.t.Helper()
	var join []string
	for _, d := range r.dirsOf(path) {
		join = append(join, "echo $$ > "+d+"/cgroup.procs")
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", strings.Join(join, " && ") + ` && exec "$@"`, "sh"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	return cmd
}

// inGroup reports whether pid is in group name's cgroup in every hierarchy.
func (r *rulesEnv) inGroup(pid int, name string) bool {
	return inCgroupPath(pid, filepath.Join(r.parent, name))
}

// inCgroupPath reports whether pid is in the cgroup at want (absolute) in
// every hierarchy of the test's.
func inCgroupPath(pid int, want string) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return false
	}
	hs, _ := ownHierarchies()
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, h := range hs {
			if h.name == parts[1] && parts[2] != want {
				return false
			}
		}
	}
	return true
}

// waitInGroup waits until pid and every descendant of it are in group
// name, or fails after settle.
func (r *rulesEnv) waitInGroup(pid int, name string) []int {
	r.t.Helper()
	end := time.Now().Add(settle)
	for {
		all := append([]int{pid}, descendants(pid)...)
		out := []int{}
		for _, p := range all {
			if !r.inGroup(p, name) {
				out = append(out, p)
			}
		}
		if len(out) == 0 {
			return all
		}
		if time.Now().After(end) {
			r.t.Fatalf("after %v, processes %v of %v are not in group %s (daemon log:\n%s)", settle, out, all, name, r.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *rulesEnv) log() string {
	data, _ := os.ReadFile(filepath.Join(r.dir, "daemon.log"))
	return string(data)
}

// descendants walks /proc/<pid>/task/*/children.
func descendants(pid int) []int {
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		for _, t := range tasks {
			data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", p, t.Name()))
			for _, f := range strings.Fields(string(data)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
					queue = append(queue, c)
				}
			}
		}
	}
	return out
}

// rulesStatus is the rules part of `lkc daemon status --json`.
type rulesStatus struct {
	WorkerPid int `json:"workerPid"`
	Rules     struct {
		Rules, Moved, Swept, Failed, Overruns, Resubscribes, Scans, Samples int
		LatencyP50us, LatencyP99us, LatencyMaxus                            int64
	} `json:"rules"`
}

func (r *rulesEnv) rulesStatus() rulesStatus {
	r.t.Helper()
	var s rulesStatus
	out := r.mustLkc("daemon", "status", "--json")
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		r.t.Fatalf("daemon status: %v: %q", err, out)
	}
	return s
}

// testUser makes a throwaway user, removed at the end.
func testUser(t *testing.T) (string, int) {
	t.Helper()
	name := fmt.Sprintf("lkcrt%d", os.Getpid()%100000)
	if out, err := exec.Command("useradd", "-M", "-r", "-s", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	out, err := exec.Command("id", "-u", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return name, uid
}

// TestRulesCgrulesIgnore: a cgrules.conf ignore rule holds, as
// libcgroup's does, only for a process already in its destination: of two
// processes in the scope, the one in keep/ stays there, and the other goes
// on to the next rule and lands in dest.
func TestRulesCgrulesIgnore(t *testing.T) {
	r := newRulesEnv(t, "")
	keep, dest, elsewhere := r.scope+"/keep", r.scope+"/dest", r.scope+"/elsewhere"
	r.writeRules(fmt.Sprintf("*  *  %s/  ignore\n*  *  %s\n", keep, dest))
	// Both processes are in cgroups beneath the scope, not in it: on v2 a
	// cgroup whose children have controllers takes no process.
	for _, cg := range []string{keep, elsewhere} {
		m, err := cgroups.New(cgroups.DefaultHost, cg)
		if err == nil {
			err = m.Create()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	kept := r.inCgroup(keep, "sleep", "60")
	other := r.inCgroup(elsewhere, "sleep", "60")
	r.start()
	for end := time.Now().Add(settle); !inCgroupPath(other.Process.Pid, dest); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("after %v, the process outside keep/ is not in %s (daemon log:\n%s)", settle, dest, r.log())
		}
	}
	if !inCgroupPath(kept.Process.Pid, keep) {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", kept.Process.Pid))
		t.Errorf("the process in keep/ was moved: %s", data)
	}
	if out := r.mustLkc("rules", "explain", strconv.Itoa(kept.Process.Pid)); !strings.Contains(out, "already in "+keep) {
		t.Errorf("rules explain of the kept process: %q, want the ignore rule, already in %s", out, keep)
	}
}

func TestRulesUserCommandAndChildren(t *testing.T) {
	r := newRulesEnv(t, "")
	name, uid := testUser(t)
	r.writeRules("user=" + name + " -> group=build\n")
	r.mustLkc("group", "create", "build")
	r.start()
	other := r.inScope("sleep", "60") // root's: no rule
	cmd := r.inScope("setpriv", "--reuid", strconv.Itoa(uid), "--regid", strconv.Itoa(uid), "--clear-groups",
		"sh", "-c", "sleep 60 & sleep 60 & sleep 60 & wait")
	r.waitInGroup(cmd.Process.Pid, "build")
	// The shell forks its three children when it gets a CPU (late in a
	// TCG VM): once they are there, they must be in the group too.
	for end := time.Now().Add(10 * time.Second); len(descendants(cmd.Process.Pid)) < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the shell has children %v, want 3", descendants(cmd.Process.Pid))
		}
	}
	all := r.waitInGroup(cmd.Process.Pid, "build")
	t.Logf("in group build: %v", all)
	if r.inGroup(other.Process.Pid, "build") {
		t.Errorf("root's sleep %d was moved into build", other.Process.Pid)
	}
	out := r.mustLkc("rules", "explain", strconv.Itoa(cmd.Process.Pid))
	for _, want := range []string{r.rules + ":1: user=" + name, "is user " + name, "target group build"} {
		if !strings.Contains(out, want) {
			t.Errorf("rules explain lacks %q:\n%s", want, out)
		}
	}
	out = r.mustLkc("rules", "explain", strconv.Itoa(other.Process.Pid))
	if !strings.Contains(out, "no rule matches") {
		t.Errorf("rules explain of an unmatched process:\n%s", out)
	}
	r.failLkc(`^lkc: rules: explain: "x" is not a process id$`, "rules", "explain", "x")
}

// TestRulesExplainContinuation asks rules explain, without the daemon,
// about a process a cgrules rule with % lines matches (%foo is %, as in
// libcgroup): the rule, and every destination of it.
func TestRulesExplainContinuation(t *testing.T) {
	r := newRulesEnv(t, "root cpu a/%u\n%foo memory b/\n* * c/\n")
	p := sleeper(t)
	out := r.mustLkc("rules", "explain", strconv.Itoa(p.Process.Pid))
	for _, want := range []string{r.rules + ":1: root cpu a/%u", "target cgroup a/root in [cpu]", "target cgroup b/ in [memory]", "the daemon is not running"} {
		if !strings.Contains(out, want) {
			t.Errorf("rules explain lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "c/") {
		t.Errorf("rules explain gives the next rule's destination:\n%s", out)
	}
}

// TestRulesExplainLeftAlone asks rules explain about processes a rule
// matches but the engine never acts on: one outside rules.scope, and a
// container's init (another pid namespace). It must say why, not only
// that nothing acted on them.
func TestRulesExplainLeftAlone(t *testing.T) {
	r := newRulesEnv(t, "user=root -> group=all\n")
	r.mustLkc("group", "create", "all")
	_, init := r.runningPid(func(s *specs.Spec) { s.Linux.CgroupsPath = r.cgroupParent("ctr") })
	r.start()
	outside := sleeper(t)
	for pid, want := range map[int]string{
		outside.Process.Pid: "left alone by the rules engine: its cgroups are outside rules.scope [" + r.scope + "]",
		init:                "left alone by the rules engine: in another pid namespace (a container's)",
	} {
		out := r.mustLkc("rules", "explain", strconv.Itoa(pid))
		if !strings.Contains(out, want) || !strings.Contains(out, "target group all") {
			t.Errorf("rules explain of pid %d lacks %q:\n%s", pid, want, out)
		}
	}
	if r.inGroup(outside.Process.Pid, "all") || r.inGroup(init, "all") {
		t.Errorf("a process outside the scope or in a container was moved into the group")
	}
}

// TestRulesCgrulesScript names a shell script by its path in a cgrules
// rule, as libcgroup reads it: its executable is the shell, its comm the
// script's name, and the rule for the shell does not take it.
func TestRulesCgrulesScript(t *testing.T) {
	r := newRulesEnv(t, "")
	script := filepath.Join(r.tmp, "lkc-job.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nsleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dest, shells, elsewhere := r.scope+"/dest", r.scope+"/shells", r.scope+"/elsewhere"
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	r.writeRules(fmt.Sprintf("*:%s * %s\n*:%s * %s\n", script, dest, sh, shells))
	m, err := cgroups.New(cgroups.DefaultHost, elsewhere)
	if err == nil {
		err = m.Create()
	}
	if err != nil {
		t.Fatal(err)
	}
	r.start()
	p := r.inCgroup(elsewhere, script)
	for end := time.Now().Add(settle); !inCgroupPath(p.Process.Pid, dest); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("after %v, the script %d is not in %s (%s; daemon log:\n%s)", settle, p.Process.Pid, dest, r.explainLine(p.Process.Pid), r.log())
		}
	}
	if out := r.mustLkc("rules", "explain", strconv.Itoa(p.Process.Pid)); !strings.Contains(out, "because process "+script) {
		t.Errorf("rules explain of the script:\n%s", out)
	}
}

// TestRulesMissingGroup loads a rule whose group is not defined: the
// daemon's log warns of it, with its line, and a process it matches
// stays in the scope, rules explain saying why.
func TestRulesMissingGroup(t *testing.T) {
	r := newRulesEnv(t, "user=root -> group=nosuch\n")
	r.start()
	p := r.inScope("sleep", "60")
	for end := time.Now().Add(settle); ; time.Sleep(20 * time.Millisecond) {
		out := r.mustLkc("rules", "explain", strconv.Itoa(p.Process.Pid))
		if strings.Contains(out, "not moved: group nosuch: no such group") {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("rules explain of a process whose rule's group is missing:\n%s", out)
		}
	}
	if !strings.Contains(r.log(), "rules: warning: "+r.rules+":1: no resource group nosuch") {
		t.Errorf("the daemon's log lacks the missing group's warning:\n%s", r.log())
	}
	if got := r.procsUnder(r.scope); !slices.Contains(got, p.Process.Pid) {
		t.Errorf("pid %d left the scope (its processes: %v)", p.Process.Pid, got)
	}
}

// copyExe copies a binary to a name of the test's, for exe rules.
func copyExe(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestRulesExecutableAndReload(t *testing.T) {
	r := newRulesEnv(t, "")
	exe := filepath.Join(r.tmp, "lkc-exe-sleep")
	copyExe(t, "/bin/sleep", exe)
	r.writeRules("exe=" + r.tmp + "/lkc-exe-* -> group=one\n")
	r.mustLkc("group", "create", "one")
	r.mustLkc("group", "create", "two")
	r.start()
	p1 := r.inScope(exe, "60")
	r.waitInGroup(p1.Process.Pid, "one")
	plain := r.inScope("sleep", "60")
	// A new rules file is read on its own (inotify): new processes go to two.
	r.writeRules("exe=" + r.tmp + "/lkc-exe-* -> group=two\n")
	end := time.Now().Add(settle)
	for {
		p := r.inScope(exe, "60")
		time.Sleep(200 * time.Millisecond)
		if r.inGroup(p.Process.Pid, "two") {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("after the rules changed, pid %d never reached group two (log:\n%s)", p.Process.Pid, r.log())
		}
	}
	if !r.inGroup(p1.Process.Pid, "one") {
		t.Errorf("pid %d left group one at the reload (placed processes stay)", p1.Process.Pid)
	}
	if r.inGroup(plain.Process.Pid, "one") || r.inGroup(plain.Process.Pid, "two") {
		t.Errorf("a plain sleep %d was moved", plain.Process.Pid)
	}
	// A file that does not parse is refused by a reload; the rules stay.
	r.writeRules("exe=" + r.tmp + "/lkc-exe-* -> frob=x\n")
	r.failLkc(`^lkc: daemon: .*rules.conf:1: .*keeping|^lkc: .*rules.conf:1: `, "daemon", "reload")
	p3 := r.inScope(exe, "60")
	r.waitInGroup(p3.Process.Pid, "two")
}

// stormResult is what a fork storm measured.
type stormResult struct {
	escapees            []string
	moved, swept, late  int     // late: placed more than 2 s after it started
	seconds, workerCPU  float64 // the worker's CPU seconds over the storm
	p50us, p99us, maxus int64
}

// forkStorm runs, inside the scope, a bash loop that starts a process of
// a matching executable (a copy of bash) every 3 ms for seconds; each
// forks two sleeps at once (before the engine can move it: the race) and
// waits for them, 5 s. Every 100 ms it looks for processes still in the
// scope that are older than 2 s, while a worker has served for 2 s; one
// that leaves the scope later in its life was placed late (counted), one
// that never does is an escapee. Late is not lost: the TCG VM under load
// stalls the engine for seconds.
// With killAt > 0 it SIGKILLs the worker that long into the storm.
// With cgred set, libcgroup's cgrulesengd places the processes instead,
// on the same rule in cgrules.conf's form (before is then its pid only).
func forkStorm(t *testing.T, seconds int, killAt time.Duration, cgred bool) stormResult {
	r := newRulesEnv(t, "")
	exe := filepath.Join(r.tmp, "lkcstorm")
	copyExe(t, "/bin/bash", exe)
	fifo := filepath.Join(r.tmp, "pace")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r.writeRules("exe=" + exe + " -> group=storm\n")
	r.mustLkc("group", "create", "storm")
	var before rulesStatus
	if cgred {
		before.WorkerPid = startCgrulesengd(t, r, exe)
	} else {
		r.start()
		before = r.rulesStatus()
	}
	cpu0 := cpuSeconds(t, before.WorkerPid)
	script := fmt.Sprintf(`exec 3<>%s; while [ $SECONDS -lt %d ]; do %s -c 'sleep 5 & sleep 5 & wait' & read -t 0.003 -u 3; done; wait`,
		fifo, seconds, exe)
	outer := r.inScope("/bin/bash", "-c", script)
	start := time.Now()
	serving := start // since when the current worker serves
	killed := killAt <= 0
	pending := map[int]string{} // older than 2 s in the scope: pid -> what it was
	escaped := map[int]string{}
	late := 0
	done := make(chan error, 1)
	go func() { done <- outer.Wait() }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-time.After(100 * time.Millisecond):
		}
		if !killed && time.Since(start) > killAt {
			kill9(t, before.WorkerPid)
			killed = true
			// The next worker serves once it answers, and has caught up
			// with the events it missed once its first scan is done (slow
			// under TCG): only then do the 2 s of grace start.
			for end := time.Now().Add(30 * time.Second); r.rulesStatus().Rules.Scans == 0; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(end) {
					t.Fatalf("the worker after %d has not scanned within 30 s (log:\n%s)", before.WorkerPid, r.log())
				}
			}
			serving = time.Now()
		}
		if time.Since(serving) < 2*time.Second {
			continue
		}
		inScope := map[int]bool{}
		for _, p := range r.procsUnder(r.scope) {
			inScope[p] = true
			if p == outer.Process.Pid || pending[p] != "" {
				continue
			}
			if age, cmd := processAge(p); age > 2*time.Second {
				if !cgred { // lkc rules explain would start lkc's daemon
					cmd += " (" + r.explainLine(p) + ")"
				}
				pending[p] = cmd
			}
		}
		for p, what := range pending {
			switch _, err := os.Stat("/proc/" + strconv.Itoa(p)); {
			case err != nil:
				escaped[p] = what
				delete(pending, p)
			case !inScope[p]:
				late++
				delete(pending, p)
			}
		}
	}
	for p, what := range pending { // the storm has ended: they are gone
		escaped[p] = what
	}
	elapsed := time.Since(start).Seconds()
	after := before
	if !cgred {
		after = r.rulesStatus()
	}
	res := stormResult{moved: after.Rules.Moved - before.Rules.Moved, swept: after.Rules.Swept - before.Rules.Swept, late: late,
		seconds: elapsed, p50us: after.Rules.LatencyP50us, p99us: after.Rules.LatencyP99us, maxus: after.Rules.LatencyMaxus}
	if killAt <= 0 {
		res.workerCPU = cpuSeconds(t, after.WorkerPid) - cpu0
	}
	for p, cmd := range escaped {
		res.escapees = append(res.escapees, fmt.Sprintf("%d %s", p, cmd))
	}
	if killAt > 0 && after.WorkerPid == before.WorkerPid {
		t.Fatalf("worker %d was not replaced", before.WorkerPid)
	}
	return res
}

// explainLine is what lkc rules explain says of pid, on one line, for a
// failure's message.
func (r *rulesEnv) explainLine(pid int) string {
	res := r.lkc("rules", "explain", strconv.Itoa(pid))
	return strings.Join(strings.Fields(res.stdout+res.stderr), " ")
}

// cpuSeconds is a process's user+system CPU time.
func cpuSeconds(t *testing.T, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100 // USER_HZ
}

// processAge is how long ago pid started, and its command line.
func processAge(pid int) (time.Duration, string) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	up, err2 := os.ReadFile("/proc/uptime")
	if err != nil || err2 != nil {
		return 0, ""
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	start, _ := strconv.ParseFloat(f[19], 64)
	var now float64
	fmt.Sscanf(string(up), "%f", &now)
	cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return time.Duration((now - start/100) * float64(time.Second)), strings.ReplaceAll(string(cmd), "\x00", " ")
}

func TestRulesForkStormNoEscapee(t *testing.T) {
	res := forkStorm(t, 4, 0, false)
	if len(res.escapees) > 0 && res.maxus >= 2_000_000 {
		// The engine was held past the 2 s grace (a host starved for
		// CPU: it happened once in CI, 12 s, the storm at 9 forks/s): a
		// process that exited meanwhile cannot be told from an escapee.
		t.Logf("the engine was held %d us, past the 2 s grace: %d processes exited unplaced (%v); storming again",
			res.maxus, len(res.escapees), res.escapees)
		res = forkStorm(t, 4, 0, false)
	}
	t.Logf("fork storm: %d processes of the rule moved in %.1f s (%.0f/s; %d children swept after their parent's move; %d placed late), "+
		"exec->in group p50 %d us, p99 %d us, max %d us; worker CPU %.2f s (%.0f%% of one CPU)",
		res.moved, res.seconds, float64(res.moved)/res.seconds, res.swept, res.late, res.p50us, res.p99us, res.maxus,
		res.workerCPU, 100*res.workerCPU/res.seconds)
	if len(res.escapees) > 0 {
		t.Errorf("%d escapees: %v", len(res.escapees), res.escapees)
	}
	if res.moved < 10 {
		t.Errorf("only %d processes moved: the storm did not run", res.moved)
	}
}

func TestRulesStormAcrossWorkerKill(t *testing.T) {
	res := forkStorm(t, 4, 1500*time.Millisecond, false)
	t.Logf("storm across a worker SIGKILL: %d moved, %d swept, %d placed late", res.moved, res.swept, res.late)
	if len(res.escapees) > 0 {
		t.Errorf("%d escapees: %v", len(res.escapees), res.escapees)
	}
}

// startCgrulesengd runs libcgroup's cgrulesengd (Debian's cgroup-tools)
// on /etc/cgrules.conf holding one rule, the storm's executable to the
// storm group in the hierarchies the test has, so that it places nothing
// else on the host. It returns its pid; it is stopped and the file
// removed in t.Cleanup.
func startCgrulesengd(t *testing.T, r *rulesEnv, exe string) int {
	bin, err := exec.LookPath("cgrulesengd")
	if err != nil {
		t.Skip("cgrulesengd (cgroup-tools) is not installed")
	}
	if cgroupV2() {
		t.Skip("the comparison runs on v1 (cgrules.conf names v1 controllers; libcgroup 2.0.2 on v2 is another setup)")
	}
	// It reads these three and refuses to start without the configs;
	// the test makes them, empty but for its rule, and removes them.
	const conf, cgconfig, cgconfigDir = "/etc/cgrules.conf", "/etc/cgconfig.conf", "/etc/cgconfig.d"
	for _, p := range []string{conf, cgconfig, cgconfigDir} {
		if _, err := os.Stat(p); err == nil {
			t.Skipf("%s exists: it is the host's, not the test's", p)
		}
	}
	if err := os.Mkdir(cgconfigDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(cgconfigDir) })
	if err := os.WriteFile(cgconfig, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(cgconfig) })
	hs, _ := ownHierarchies()
	var ctrls []string
	for _, h := range hs {
		ctrls = append(ctrls, h.name)
	}
	rule := fmt.Sprintf("*:%s %s %s/storm\n", exe, strings.Join(ctrls, ","), r.parent)
	if err := os.WriteFile(conf, []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(conf) })
	// It listens on this socket and leaves it when killed: removed after
	// the kill below, unless the host had one.
	const sock = "/run/cgred.socket"
	if _, err := os.Lstat(sock); err != nil {
		t.Cleanup(func() { os.Remove(sock) })
	}
	logFile := filepath.Join(r.tmp, "cgrulesengd.log")
	cmd := exec.Command(bin, "-n", "-q", "-f", logFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Ready once it classifies: a matching process reaches the group.
	end := time.Now().Add(10 * time.Second)
	for {
		p := r.inScope(exe, "-c", "sleep 60")
		time.Sleep(100 * time.Millisecond)
		ok := r.inGroup(p.Process.Pid, "storm")
		syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
		if ok {
			return cmd.Process.Pid
		}
		if time.Now().After(end) {
			data, _ := os.ReadFile(logFile)
			t.Fatalf("cgrulesengd placed nothing within 10 s (its log: %q)", data)
		}
	}
}

// TestRulesCgrulesengdStorm runs the same storm under cgrulesengd, for
// the comparison: its escapees are reported, not failed on. A measurement
// of another tool, which nothing of lkc's can fail, so it is opt-in
// (LKC_RULES_BENCH=1), as the other measurements are.
func TestRulesCgrulesengdStorm(t *testing.T) {
	if os.Getenv("LKC_RULES_BENCH") == "" {
		t.Skip("a measurement: set LKC_RULES_BENCH=1")
	}
	res := forkStorm(t, 4, 0, true)
	t.Logf("cgrulesengd fork storm over %.1f s: %d escapees; its CPU %.2f s (%.0f%% of one CPU)",
		res.seconds, len(res.escapees), res.workerCPU, 100*res.workerCPU/res.seconds)
}

// cgroupLines is a process's /proc/PID/cgroup lines of the hierarchies
// the test sees, hierarchy -> path.
func cgroupLines(t *testing.T, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	hs, _ := ownHierarchies()
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		for _, h := range hs {
			if len(parts) == 3 && h.name == parts[1] {
				out[h.name] = parts[2]
			}
		}
	}
	return out
}

// TestRulesContainerTarget places processes into a running container's
// cgroup (container=ID, found in rules.roots); a rule naming a container
// that is absent, or one that stopped, leaves its process where it is,
// and rules explain says why.
func TestRulesContainerTarget(t *testing.T) {
	r := newRulesEnv(t, "")
	id, init := r.runningPid(func(s *specs.Spec) {
		s.Linux.CgroupsPath = r.cgroupParent("ctr")
	})
	exe := filepath.Join(r.tmp, "lkc-ctr-sleep")
	copyExe(t, "/bin/sleep", exe)
	gone := filepath.Join(r.tmp, "lkc-gone-sleep")
	copyExe(t, "/bin/sleep", gone)
	r.writeRules("exe=" + exe + " -> container=" + id + "\nexe=" + gone + " -> container=nosuch\n")
	conf := os.Getenv("LKC_CONFIG")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "rules.roots = %s\n", r.root)
	f.Close()
	r.start()
	want := cgroupLines(t, init)
	p := r.inScope(exe, "60")
	for end := time.Now().Add(settle); ; time.Sleep(10 * time.Millisecond) {
		got := cgroupLines(t, p.Process.Pid)
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("pid %d is in %v, want the container's %v (log:\n%s)", p.Process.Pid, got, want, r.log())
		}
	}
	out := r.mustLkc("rules", "explain", strconv.Itoa(p.Process.Pid))
	if !strings.Contains(out, "target container "+id) || !strings.Contains(out, "moved to") {
		t.Errorf("rules explain of a process placed in the container:\n%s", out)
	}
	stays := func(exe, why string) {
		t.Helper()
		q := r.inScope(exe, "60")
		for end := time.Now().Add(settle); ; time.Sleep(20 * time.Millisecond) {
			out := r.mustLkc("rules", "explain", strconv.Itoa(q.Process.Pid))
			if strings.Contains(out, why) {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("rules explain of pid %d lacks %q:\n%s", q.Process.Pid, why, out)
			}
		}
		for _, path := range cgroupLines(t, q.Process.Pid) {
			if path != r.scope {
				t.Errorf("pid %d left the scope %s for %s", q.Process.Pid, r.scope, path)
			}
		}
	}
	stays(gone, "not moved: no container nosuch in the lkc roots "+r.root)
	r.mustLkc("kill", id, "KILL")
	r.waitStatus(id, "stopped")
	stays(exe, "not moved: container "+id+" (root "+r.root+") is not running")
}

// TestRulesScanSweepsGroupChildren moves a shell alone into a group
// (`lkc group move`), leaving the child it forked before in the scope, as
// a worker killed between a move and its sweep would: the daemon's start
// scan sweeps the child into the group.
func TestRulesScanSweepsGroupChildren(t *testing.T) {
	r := newRulesEnv(t, "exe=/nonexistent -> group=g\n")
	r.mustLkc("group", "create", "g")
	sh := r.inScope("sh", "-c", "sleep 60 & wait")
	var kids []int
	for end := time.Now().Add(settle); len(kids) == 0; time.Sleep(10 * time.Millisecond) {
		if kids = descendants(sh.Process.Pid); time.Now().After(end) {
			t.Fatal("the shell forked no child")
		}
	}
	r.mustLkc("group", "move", "g", strconv.Itoa(sh.Process.Pid))
	if r.inGroup(kids[0], "g") || !r.inGroup(sh.Process.Pid, "g") {
		t.Fatalf("after group move of %d alone: child %d in g %v, parent %v", sh.Process.Pid, kids[0],
			r.inGroup(kids[0], "g"), r.inGroup(sh.Process.Pid, "g"))
	}
	r.start()
	r.waitInGroup(sh.Process.Pid, "g")
}
