package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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
	var join []string
	for _, d := range r.dirsOf(r.scope) {
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
	want := filepath.Join(r.parent, name)
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
// name, or fails after the deadline.
func (r *rulesEnv) waitInGroup(pid int, name string, deadline time.Duration) []int {
	r.t.Helper()
	end := time.Now().Add(deadline)
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
			r.t.Fatalf("after %v, processes %v of %v are not in group %s (daemon log:\n%s)", deadline, out, all, name, r.log())
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
		Rules, Moved, Swept, Failed, Overruns, Scans, Samples int
		LatencyP50us, LatencyP99us, LatencyMaxus              int64
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

func TestRulesUserCommandAndChildren(t *testing.T) {
	r := newRulesEnv(t, "")
	name, uid := testUser(t)
	r.writeRules("user=" + name + " -> group=build\n")
	r.mustLkc("group", "create", "build")
	r.start()
	other := r.inScope("sleep", "60") // root's: no rule
	cmd := r.inScope("setpriv", "--reuid", strconv.Itoa(uid), "--regid", strconv.Itoa(uid), "--clear-groups",
		"sh", "-c", "sleep 60 & sleep 60 & sleep 60 & wait")
	all := r.waitInGroup(cmd.Process.Pid, "build", 2*time.Second)
	if len(all) < 4 {
		// the children may not all be forked yet: wait for them too
		time.Sleep(200 * time.Millisecond)
		all = r.waitInGroup(cmd.Process.Pid, "build", 2*time.Second)
	}
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
	r.waitInGroup(p1.Process.Pid, "one", 2*time.Second)
	plain := r.inScope("sleep", "60")
	// A new rules file is read on its own (inotify): new processes go to two.
	r.writeRules("exe=" + r.tmp + "/lkc-exe-* -> group=two\n")
	end := time.Now().Add(5 * time.Second)
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
	r.waitInGroup(p3.Process.Pid, "two", 2*time.Second)
}
