package rules

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

var users = ParseUsers(strings.NewReader(`root:x:0:0:root:/root:/bin/bash
student:x:1000:1000::/home/student:/bin/sh
peter:x:1001:1001::/home/peter:/bin/sh
alice:x:1002:1002::/home/alice:/bin/sh
`), strings.NewReader(`root:x:0:
student:x:1000:
peter:x:1001:
alice:x:1002:
admin:x:50:peter
developers:x:60:
`))

// The examples of cgrules.conf(5) (libcgroup), in one file.
const cgrulesExample = `# cgrules.conf
student         devices         /usergroup/students
student:cp      devices         /usergroup/students/cp
@admin          *               admingroup/
peter           cpu             test1/
%               memory          test2/
*:/usr/sbin/sshd *              sshd/%u  ignore
*               *               default/
`

func parse(t *testing.T, text string) []*Rule {
	t.Helper()
	rs, err := Parse(strings.NewReader(text), "rules.conf")
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestCgrulesExamples(t *testing.T) {
	rs := parse(t, cgrulesExample)
	if len(rs) != 6 {
		t.Fatalf("%d rules, want 6 (the %% line joins peter's)", len(rs))
	}
	peter := rs[3]
	want := []Target{{Kind: "cgroup", Name: "test1/", Controllers: []string{"cpu"}}, {Kind: "cgroup", Name: "test2/", Controllers: []string{"memory"}}}
	if !reflect.DeepEqual(peter.Targets, want) || peter.User != "peter" || peter.Line != 5 {
		t.Errorf("peter's rule: %+v", peter)
	}
	cases := []struct {
		p    Process
		line int
		dest string
	}{
		{Process{Pid: 10, UID: 1000, GIDs: []int{1000}, Exe: "/usr/bin/ls", Comm: "ls"}, 2, "/usergroup/students"},
		{Process{Pid: 11, UID: 1000, GIDs: []int{1000}, Exe: "/bin/cp", Comm: "cp"}, 2, "/usergroup/students"}, // first match wins
		{Process{Pid: 12, UID: 1001, GIDs: []int{1001}, Exe: "/bin/cp"}, 4, "admingroup/"},                     // member of admin
		{Process{Pid: 13, UID: 1002, GIDs: []int{1002, 50}, Exe: "/bin/true"}, 4, "admingroup/"},               // gid 50
		// ignore holds only for a process already in the destination
		{Process{Pid: 14, UID: 1002, GIDs: []int{1002}, Exe: "/usr/sbin/sshd", Cgroups: map[string]string{"cpu,cpuacct": "/sshd/alice/x"}}, 7, "sshd/alice"},
		{Process{Pid: 15, UID: 4242, GIDs: []int{4242}, Exe: "/bin/true"}, 8, "default/"},
		{Process{Pid: 16, UID: 1002, GIDs: []int{1002}, Exe: "/usr/sbin/sshd", Cgroups: map[string]string{"cpu,cpuacct": "/user.slice"}}, 8, "default/"},
	}
	for _, c := range cases {
		m := Find(rs, &c.p, users)
		if m == nil || m.Rule.Line != c.line || m.Targets[0].Name != c.dest {
			t.Errorf("process %+v: matched %+v, want line %d -> %s", c.p, m, c.line, c.dest)
		}
	}
	if m := Find(rs, &cases[4].p, users); !m.Rule.Ignore {
		t.Errorf("sshd rule: ignore not set")
	}
}

// TestCgrulesIgnore checks the ignore option as libcgroup reads it: the
// rule holds for a process already in its destination, or beneath it, in a
// hierarchy of its controllers; any other process goes on to the next rule
// (libcgroup's example: the processes in IgnoreCgroup stay, the others go
// to DefaultCgroup).
func TestCgrulesIgnore(t *testing.T) {
	rs := parse(t, "*  cpuset  IgnoreCgroup/  ignore\n*  cpuset  DefaultCgroup\n")
	if !rs[0].NeedsCgroups() || rs[1].NeedsCgroups() {
		t.Errorf("NeedsCgroups: %v, %v; want true, false", rs[0].NeedsCgroups(), rs[1].NeedsCgroups())
	}
	for _, c := range []struct {
		cgroups map[string]string
		line    int
	}{
		{map[string]string{"cpuset": "/IgnoreCgroup"}, 1},
		{map[string]string{"cpuset": "/IgnoreCgroup/child"}, 1},
		{map[string]string{"cpuset": "/IgnoreCgroup1"}, 2},
		{map[string]string{"cpuset": "/"}, 2},
		{map[string]string{"cpuset": "/", "memory": "/IgnoreCgroup"}, 2}, // another controller's
		{map[string]string{"cpuset": "/", "": "/IgnoreCgroup"}, 1},       // v2 serves every controller
		{nil, 2},
	} {
		p := &Process{Pid: 20, UID: 1000, Exe: "/bin/sh", Cgroups: c.cgroups}
		if m := Find(rs, p, users); m == nil || m.Rule.Line != c.line {
			t.Errorf("process in %v: matched %+v, want line %d", c.cgroups, m, c.line)
		}
	}
}

// TestCgrulesProcessWildcard checks libcgroup's trailing '*' in a process
// name: a prefix of the process's full name (the comm's without an
// executable).
func TestCgrulesProcessWildcard(t *testing.T) {
	rs := parse(t, "*:/opt/app/bin/* cpu /app\n*:kworker* cpu /k\n")
	for _, c := range []struct {
		p    Process
		line int
	}{
		{Process{Exe: "/opt/app/bin/server"}, 1},
		{Process{Exe: "/opt/app/bin/"}, 1},
		{Process{Exe: "/opt/app/lib/x"}, 0},
		{Process{Comm: "kworker/0:1"}, 2},
		{Process{Exe: "/usr/bin/kworker", Comm: "kworker"}, 0}, // the full path is the name
	} {
		line := 0
		if m := Find(rs, &c.p, users); m != nil {
			line = m.Rule.Line
		}
		if line != c.line {
			t.Errorf("process %+v: matched line %d, want %d (0: none)", c.p, line, c.line)
		}
	}
}

func TestCgrulesProcessName(t *testing.T) {
	rs := parse(t, "student:cp devices /cp\nstudent:/usr/bin/make cpu /make\n")
	p := &Process{UID: 1000, Exe: "/usr/bin/cp"}
	if m := Find(rs, p, users); m == nil || m.Rule.Line != 1 {
		t.Errorf("cp by base name: %+v", m)
	}
	p.Exe = "/usr/bin/make"
	if m := Find(rs, p, users); m == nil || m.Rule.Line != 2 {
		t.Errorf("make by full path: %+v", m)
	}
	p.Exe = "/opt/bin/make"
	if m := Find(rs, p, users); m != nil {
		t.Errorf("another make matched the full path rule: %+v", m)
	}
}

func TestLKCForm(t *testing.T) {
	rs := parse(t, `
user=alice exe=/usr/bin/make            -> group=build
@developers exe=/usr/lib/jvm/*/bin/java -> group=java/%u
cmdline="*--batch *"                    -> group=batch
exe=/usr/sbin/nginx                     -> container=web1
user=* leader=session comm=sshd         -> ignore
uid=1001 leader=pgrp                    -> group=p%U
`)
	cases := []struct {
		p      Process
		line   int
		target string
	}{
		{Process{Pid: 5, UID: 1002, Exe: "/usr/bin/make"}, 2, "group=build"},
		{Process{Pid: 5, UID: 1000, GIDs: []int{1000, 60}, Exe: "/usr/lib/jvm/java-17/bin/java"}, 3, "group=java/student"},
		{Process{Pid: 5, UID: 1000, Exe: "/usr/lib/jvm/a/b/bin/java"}, 0, ""}, // * stays in one component
		{Process{Pid: 5, UID: 0, Exe: "/usr/bin/python3", Cmdline: []string{"python3", "/srv/job.py", "--batch", "x"}}, 4, "group=batch"},
		{Process{Pid: 5, Exe: "/usr/sbin/nginx"}, 5, "container=web1"},
		{Process{Pid: 7, SID: 7, Comm: "sshd"}, 6, "ignore"},
		{Process{Pid: 7, SID: 1, Comm: "sshd"}, 0, ""},
		{Process{Pid: 9, PGID: 9, UID: 1001}, 7, "group=p1001"},
	}
	for _, c := range cases {
		m := Find(rs, &c.p, users)
		switch {
		case c.line == 0 && m != nil:
			t.Errorf("%+v matched line %d", c.p, m.Rule.Line)
		case c.line == 0:
		case m == nil || m.Rule.Line != c.line:
			t.Errorf("%+v: matched %+v, want line %d", c.p, m, c.line)
		case m.Rule.Ignore != (c.target == "ignore"):
			t.Errorf("%+v: ignore %v", c.p, m.Rule.Ignore)
		case !m.Rule.Ignore && m.Targets[0].Kind+"="+m.Targets[0].Name != c.target:
			t.Errorf("%+v: target %+v, want %s", c.p, m.Targets[0], c.target)
		}
	}
	m := Find(rs, &Process{Pid: 5, UID: 1002, Exe: "/usr/bin/make"}, users)
	if want := []string{"uid 1002 is user alice", "exe /usr/bin/make matches /usr/bin/make"}; !reflect.DeepEqual(m.Why, want) {
		t.Errorf("why: %q, want %q", m.Why, want)
	}
}

func TestExpand(t *testing.T) {
	p := &Process{Pid: 77, UID: 1000, GIDs: []int{1001}, Exe: "/usr/bin/vim"}
	if got := Expand(`%u/%U/%g/%G/%p/%P/\%u`, p, users); got != "student/1000/peter/1001/vim/77/%u" {
		t.Errorf("Expand = %q", got)
	}
	p = &Process{Pid: 78, UID: 5555, GIDs: []int{6666}}
	if got := Expand(`%u-%g-%p`, p, users); got != "5555-6666-78" {
		t.Errorf("Expand of unknown ids = %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ text, want string }{
		{"student devices", "rules.conf:1: want <user>[:<process>] <controllers> <destination>"},
		{"# c\nstudent cpu", "rules.conf:2: want"},
		{"student cpu /a sticky extra", `rules.conf:1: option "sticky"`},
		{"% cpu /a", `rules.conf:1: "%" continues the rule above, and there is none`},
		{"# first\n%foo cpu /a\nstudent cpu /b", `rules.conf:2: "%foo" continues the rule above, and there is none`},
		{"student cpu /a\n%foo memory", "rules.conf:2: want <user>[:<process>]"},
		{"student cpu /a\n% memory /b sticky", `rules.conf:2: option "sticky"`},
		{"student cpu /a\n%: memory /b", "rules.conf:2: empty process name"},
		{"student cpu /a sticky", `rules.conf:1: option "sticky"`},
		{"student: cpu /a", "empty process name"},
		{"@ cpu /a", "empty group name"},
		{"student cpu,,memory /a", "an empty name"},
		{"student cpu,* /a", "* stands alone"},
		{"student cpu /a/%x", "% must be followed by"},
		{"student cpu /a/../../b", ".. is not allowed"},
		{"user=alice -> group=a b", "want one target"},
		{"user=alice ->", "want one target"},
		{"user=alice -> bucket=x", `target "bucket=x"`},
		{"user=alice -> group=../x", "want a group name"},
		{"user=alice -> container=a/b", "want a container id"},
		{"color=red -> ignore", "unknown criterion color"},
		{"exe=bin/x -> ignore", "want an absolute path"},
		{"exe=/bin/[x -> ignore", "want an absolute path or glob"},
		{"uid=abc -> ignore", "uid=abc: want a number"},
		{"leader=boss -> ignore", "use session or pgrp"},
		{"comm=averyveryverylongname -> ignore", "15 bytes"},
		{`cmdline="abc -> ignore`, "unterminated quote"},
		{"user= -> ignore", "want key=value"},
	}
	for _, c := range cases {
		_, err := Parse(strings.NewReader(c.text), "rules.conf")
		var pe *Error
		if err == nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) = %v, want a one-line error containing %q", c.text, err, c.want)
		}
	}
}

func TestUnknownNames(t *testing.T) {
	rs := parse(t, "bob cpu /a\n@staff * /b\nstudent * /c\n")
	got := Unknown(rs, users)
	want := []string{"rules.conf:1: no user bob (the rule matches nobody)", "rules.conf:2: no group staff (the rule matches nobody)"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Unknown = %q", got)
	}
}

// TestCgrulesAsLibcgroup checks two readings of libcgroup's parser: it
// reads four fields and ignores the rest (lkc keeps them, to warn), and
// a user that begins with * is anyone.
func TestCgrulesAsLibcgroup(t *testing.T) {
	rs := parse(t, "student cpu /a ignore # old\npeter cpu /b/%u ignore later maybe\n*anyone cpu /c\n")
	if len(rs) != 3 || rs[0].Extra != nil || !reflect.DeepEqual(rs[1].Extra, []string{"later", "maybe"}) || !rs[1].Ignore || rs[1].Targets[0].Name != "/b/%u" {
		t.Fatalf("rules: %+v", rs)
	}
	want := []string{"rules.conf:2: fields after the 4th ignored, as libcgroup does: later maybe"}
	if got := ExtraFields(rs); !reflect.DeepEqual(got, want) {
		t.Errorf("ExtraFields = %q, want %q", got, want)
	}
	if got := Unknown(rs, users); got != nil {
		t.Errorf("Unknown = %q, want none (*anyone is anyone)", got)
	}
	m := Find(rs, &Process{Pid: 10, UID: 4242, GIDs: []int{4242}, Exe: "/bin/true"}, users)
	if m == nil || m.Rule.Line != 3 {
		t.Errorf("uid 4242 matched %+v, want line 3 (*anyone)", m)
	}
}

// TestCgrulesContinuation checks libcgroup's reading of a user word
// that begins with %: whatever follows the %, the line adds its
// destination to the rule above (a @group one here), which alone decides
// whom it moves; the % line's process name, ignore option and fields
// after the 4th are ignored, with a warning.
func TestCgrulesContinuation(t *testing.T) {
	rs := parse(t, "@admin cpu a/\n%foo memory b/%u\n%:cp pids c/ ignore\n% blkio d/ ignore later\nstudent cpu s/\n")
	if len(rs) != 2 {
		t.Fatalf("%d rules, want 2 (the %% lines join @admin's)", len(rs))
	}
	admin := rs[0]
	want := []Target{
		{Kind: "cgroup", Name: "a/", Controllers: []string{"cpu"}},
		{Kind: "cgroup", Name: "b/%u", Controllers: []string{"memory"}},
		{Kind: "cgroup", Name: "c/", Controllers: []string{"pids"}},
		{Kind: "cgroup", Name: "d/", Controllers: []string{"blkio"}},
	}
	if !reflect.DeepEqual(admin.Targets, want) || admin.Group != "admin" || admin.User != "" || admin.Process != "" || admin.Ignore || admin.Extra != nil || admin.Line != 1 || admin.Text != "@admin cpu a/" {
		t.Errorf("@admin's rule: %+v", admin)
	}
	warn := []string{
		"rules.conf:3: a % line takes only controllers and a destination (the rule above decides whom it moves); ignored, as libcgroup does: process name cp, option ignore",
		"rules.conf:4: a % line takes only controllers and a destination (the rule above decides whom it moves); ignored, as libcgroup does: option ignore, fields after the 4th later",
	}
	if got := ExtraFields(rs); !reflect.DeepEqual(got, warn) {
		t.Errorf("ExtraFields = %q, want %q", got, warn)
	}
	if got := Unknown(rs, users); got != nil {
		t.Errorf("Unknown = %q, want none (%%foo names no user)", got)
	}
	m := Find(rs, &Process{Pid: 10, UID: 1001, GIDs: []int{1001}, Exe: "/bin/ls", Comm: "ls"}, users)
	if m == nil || m.Rule != admin || len(m.Targets) != 4 || m.Targets[1].Name != "b/peter" || m.Targets[2].Name != "c/" {
		t.Errorf("peter (in admin) running ls matched %+v, want @admin's rule with its 4 destinations", m)
	}
	m = Find(rs, &Process{Pid: 11, UID: 1000, GIDs: []int{1000}, Exe: "/bin/cp", Comm: "cp"}, users)
	if m == nil || m.Rule.Line != 5 || len(m.Targets) != 1 {
		t.Errorf("student running cp matched %+v, want line 5 (a %% line's process name makes no rule)", m)
	}
}

// TestCgrulesScript checks libcgroup's name of a script: the script's path
// (ScriptArg finds it in the command line), not its interpreter's, for
// the process name and %p.
func TestCgrulesScript(t *testing.T) {
	rs := parse(t, "*:/opt/tools/backup.sh cpu /b/%p\n*:/usr/bin/bash cpu /sh\n*:report.py cpu /r\n")
	for _, c := range []struct {
		p    Process
		line int
		dest string
	}{
		{Process{Exe: "/usr/bin/bash", Comm: "backup.sh", Script: "/opt/tools/backup.sh"}, 1, "/b/backup.sh"},
		{Process{Exe: "/usr/bin/bash", Comm: "bash"}, 2, "/sh"},
		{Process{Exe: "/usr/bin/bash", Comm: "other.sh", Script: "/home/a/other.sh"}, 0, ""}, // not its interpreter's rule
		{Process{Exe: "/usr/bin/python3.11", Comm: "report.py", Script: "/srv/report.py"}, 3, "/r"},
	} {
		line, dest := 0, ""
		if m := Find(rs, &c.p, users); m != nil {
			line, dest = m.Rule.Line, m.Targets[0].Name
		}
		if line != c.line || dest != c.dest {
			t.Errorf("process %+v: matched line %d (%s), want %d (%s)", c.p, line, dest, c.line, c.dest)
		}
	}
	for _, c := range []struct {
		comm, exe string
		cmdline   []string
		want      string
	}{
		{"backup.sh", "/usr/bin/bash", []string{"/bin/bash", "/opt/tools/backup.sh", "-v"}, "/opt/tools/backup.sh"},
		{"backup.sh", "/usr/bin/bash", []string{"bash", "./backup.sh"}, "./backup.sh"},
		{"a-very-long-scr", "/usr/bin/python3.11", []string{"python3", "a-very-long-script.py"}, "a-very-long-script.py"},
		{"python3", "/usr/bin/python3.11", []string{"/usr/bin/python3", "x.py"}, "/usr/bin/python3"}, // a symlink
		{"bash", "/usr/bin/bash", []string{"bash", "bash.sh"}, ""},                                   // named by its executable
		{"renamed", "/usr/bin/prog", []string{"/usr/bin/prog"}, ""},                                  // PR_SET_NAME: no argument
		{"kworker/0:1", "", nil, ""},
	} {
		if got := ScriptArg(c.comm, c.exe, c.cmdline); got != c.want {
			t.Errorf("ScriptArg(%q, %q, %q) = %q, want %q", c.comm, c.exe, c.cmdline, got, c.want)
		}
	}
}
