package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// agreeCase is a process that TestExecPlanAndGoInitAgree execs both ways.
type agreeCase struct {
	name    string
	process string // process.json fields but oomScoreAdj
	// preserve passes two files to lkc exec and --preserve-fds 1: fd 3
	// must reach the process, fd 4 must not.
	preserve bool
	fails    bool     // lkc exec must fail, with the same error both ways
	want     []string // in the output (or error) of both
	unwanted []string // in neither
}

// agreeProbe prints what the process was set up with.
const agreeProbe = `grep -E "^(Uid|Gid|Groups|Cap...|NoNewPrivs|Seccomp):" /proc/self/status; umask; ` +
	`echo "home=$HOME x=$X cwd=$(pwd)"; ls /proc/self/fd; mkdir /tmp/m 2>/dev/null || echo mkdir-denied`

// TestExecPlanAndGoInitAgree: a plain exec is finished by the nsenter
// constructor in C, the same process with an oom score by Go's init
// (nsenter.Plannable). Every step both carry out must come out alike:
// user, groups, capabilities (ambient too), no_new_privs, the container's
// seccomp filter loaded before and after the user change, umask, cwd, env,
// HOME (given, from /etc/passwd, or "/"), the PATH lookup (missing
// directories, a file that is not executable, a directory, an empty entry),
// closing every fd but the preserved ones, and the errors of an executable
// not in PATH, a path that is missing or not executable and a missing cwd.
func TestExecPlanAndGoInitAgree(t *testing.T) {
	e := newEnv(t)
	id, pid := e.runningPid(withSeccomp(denyMkdir()))
	makeLookupDirs(t, pid)
	probe := `"args":["sh","-c",` + strconv.Quote(agreeProbe) + `],"env":["PATH=/bin","X=1"],`
	caps := `"capabilities":{"bounding":["CAP_CHOWN","CAP_NET_RAW"],"effective":["CAP_CHOWN"],` +
		`"permitted":["CAP_CHOWN","CAP_NET_RAW"],"inheritable":["CAP_CHOWN"],"ambient":["CAP_CHOWN"]}`
	for _, c := range []agreeCase{{
		name: "non-root with no_new_privs",
		process: probe + `"cwd":"/tmp","user":{"uid":1000,"gid":1001,"additionalGids":[2000,2001],"umask":63},` +
			`"noNewPrivileges":true,` + caps,
		want: []string{"Uid:\t1000\t1000\t1000", "Gid:\t1001\t1001\t1001", "Groups:\t2000 2001",
			"CapEff:\t0000000000000001", "CapBnd:\t0000000000002001", "CapAmb:\t0000000000000001",
			"NoNewPrivs:\t1", "Seccomp:\t2", "0077", "home=/ x=1 cwd=/tmp", "mkdir-denied"},
	}, {
		name:    "root without no_new_privs",
		process: probe + `"cwd":"/","user":{"uid":0,"gid":0},` + caps,
		want: []string{"Uid:\t0\t0\t0", "CapPrm:\t0000000000002001", "CapAmb:\t0000000000000001",
			"NoNewPrivs:\t0", "Seccomp:\t2", "home=/root x=1 cwd=/", "mkdir-denied"},
	}, {
		name:     "PATH lookup and preserved fds",
		process:  `"args":["probe"],"env":["PATH=/nonexistent:/tmp/d1:/tmp/d2::/tmp/d3","HOME=/custom"],"cwd":"/","user":{"uid":0,"gid":0}`,
		preserve: true,
		want:     []string{"/tmp/d3/probe home=/custom\nfd 3 open\n"},
		unwanted: []string{"fd 4"},
	}, {
		name:    "PATH lookup in cwd, uncleaned",
		process: `"args":["probe"],"env":["PATH=/tmp/d1::/tmp//d3/"],"cwd":"/tmp/d3","user":{"uid":0,"gid":0}`,
		want:    []string{"./probe home=/root\n"},
	}, {
		name:    "PATH lookup, uncleaned",
		process: `"args":["probe"],"env":["PATH=/tmp/d1:/tmp//d3/"],"cwd":"/","user":{"uid":0,"gid":0}`,
		want:    []string{"/tmp//d3//probe home=/root\n"},
	}, {
		name:    "no such executable",
		process: `"args":["nope"],"env":["PATH=/nonexistent:/tmp/d1"],"cwd":"/","user":{"uid":0,"gid":0}`,
		fails:   true,
		want:    []string{`exec "nope": executable file not found in $PATH`},
	}, {
		name:    "not executable",
		process: `"args":["/tmp/d1/probe"],"cwd":"/","user":{"uid":0,"gid":0}`,
		fails:   true,
		want:    []string{`exec "/tmp/d1/probe": /tmp/d1/probe: permission denied`},
	}, {
		name:    "no such path",
		process: `"args":["/tmp/nope"],"cwd":"/","user":{"uid":0,"gid":0}`,
		fails:   true,
		want:    []string{`exec "/tmp/nope": stat /tmp/nope: no such file or directory`},
	}, {
		name:    "no such cwd",
		process: `"args":["true"],"env":["PATH=/bin"],"cwd":"/nonexistent","user":{"uid":0,"gid":0}`,
		fails:   true,
		want:    []string{"process.cwd /nonexistent: no such file or directory"},
	}} {
		t.Run(c.name, func(t *testing.T) {
			inC := execBothWays(t, e, id, c, "")
			inGo := execBothWays(t, e, id, c, `,"oomScoreAdj":0`)
			if inC != inGo {
				t.Errorf("the same process set up by the constructor:\n%s\nand by Go's init:\n%s", inC, inGo)
			}
			for _, want := range c.want {
				if !strings.Contains(inC, want) {
					t.Errorf("exec set up by the constructor lacks %q:\n%s", want, inC)
				}
			}
			for _, bad := range c.unwanted {
				if strings.Contains(inC, bad) {
					t.Errorf("exec set up by the constructor has %q:\n%s", bad, inC)
				}
			}
			if out := inC; !c.fails && strings.Contains(out, "cwd=") {
				fds := strings.Fields(out[strings.Index(out, "cwd="):strings.Index(out, "mkdir-denied")])
				if len(fds) != 5 {
					t.Errorf("exec has fds %v, want 0-2 and ls's own", fds[1:])
				}
			}
		})
	}
}

// execBothWays execs c's process with extra fields added, and returns its
// output or, when c.fails, its error.
func execBothWays(t *testing.T, e *env, id string, c agreeCase, extra string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "process.json")
	if err := os.WriteFile(p, []byte("{"+c.process+extra+"}"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"exec", "--process", p, id}
	var files []*os.File
	if c.preserve {
		files = []*os.File{e.tempFile(), e.tempFile()}
		args = append([]string{"exec", "--preserve-fds", "1"}, args[1:]...)
	}
	r := e.lkcWith(files, args...)
	if c.fails {
		if r.code == 0 {
			t.Fatalf("lkc %s succeeded: %v", strings.Join(args, " "), r)
		}
		return r.stderr
	}
	if r.code != 0 {
		t.Fatalf("lkc %s: %v", strings.Join(args, " "), r)
	}
	return r.stdout
}

// makeLookupDirs makes, in the container's /tmp, the directories the PATH
// lookup walks: d1/probe is not executable, d2/probe is a directory, and
// d3/probe is a script that prints what it was run as, HOME and which of
// fds 3-5 it has (test is a shell builtin: /proc/self is the script's).
// (The host makes them: the container's seccomp filter denies mkdir.)
func makeLookupDirs(t *testing.T, pid int) {
	tmp := filepath.Join("/proc", strconv.Itoa(pid), "root", "tmp")
	script := "#!/bin/sh\necho \"$0 home=$HOME\"\nfor fd in 3 4 5; do test -e /proc/self/fd/$fd && echo \"fd $fd open\"; done; true\n"
	for _, err := range []error{
		os.MkdirAll(filepath.Join(tmp, "d1"), 0o755),
		os.MkdirAll(filepath.Join(tmp, "d2", "probe"), 0o755),
		os.MkdirAll(filepath.Join(tmp, "d3"), 0o755),
		os.WriteFile(filepath.Join(tmp, "d1", "probe"), []byte(script), 0o644),
		os.WriteFile(filepath.Join(tmp, "d3", "probe"), []byte(script), 0o755),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}
