package integration

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/testutil"
)

// The tests here run the CVE-2019-5736 class of attacks for real, one test
// per way a container reaches a process running lkc: the init of a created
// container, the process of `lkc exec`, and lkc executed by the kernel for a
// `#!/proc/self/exe` entrypoint. The attacker (testdata/exeattack) runs in a
// container with CAP_SYS_ADMIN, takes a handle on that process's
// /proc/<pid>/exe and /proc/<pid>/map_files, tries to make the handle
// writable (mount_setattr, a clone of its mount, fspick, remount) and writes
// through it once no process runs lkc. Each test runs a copy of lkc, so a
// successful attack changes only the copy, and no other test's lkc keeps the
// copy busy (ETXTBSY) and hides the answer.

// exeAttack is the attacker container of one test.
type exeAttack struct {
	e       *env
	c       secContainer
	before  string // sha256 of e.bin before the attack
	checked bool   // check logged the attacker's output
}

var (
	holdingRe = regexp.MustCompile(`(?m)^HOLDING pid `)
	doneRe    = regexp.MustCompile(`(?m)^DONE$`)
)

// startExeAttack makes e run a copy of lkc and starts the attacker in a
// container of its own, with lkc's default capabilities plus caps.
func startExeAttack(e *env, caps ...string) *exeAttack {
	t := e.t
	t.Helper()
	attacker := testdataBinary(t, "exeattack")
	e.bin = filepath.Join(t.TempDir(), "lkc")
	copyExecutable(t, lkcBinary, e.bin)
	// Cleanups run last first: e's cleanup, which deletes the containers,
	// then runs the binary under test, not the copy the attack may have
	// broken.
	t.Cleanup(func() { e.bin = lkcBinary })
	fi, err := os.Stat(e.bin)
	if err != nil {
		t.Fatal(err)
	}
	root := e.writableRootfs()
	copyExecutable(t, attacker, filepath.Join(root, "exeattack"))
	a := &exeAttack{e: e, before: sha256File(t, e.bin)}
	args := []string{"/exeattack", "-size", strconv.FormatInt(fi.Size(), 10)}
	a.c = e.secCreate(e.bundle(args, func(s *specs.Spec) {
		s.Root.Path = root
		addCaps(s, caps...)
	}))
	t.Cleanup(func() {
		if t.Failed() && !a.checked {
			out, _ := os.ReadFile(a.c.stdout)
			t.Logf("attacker's output:\n%s", out)
		}
	})
	e.mustLkc("start", a.c.id)
	secWaitOutput(t, a.c.stdout, regexp.MustCompile(`(?m)^ready$`))
	return a
}

// holding reports whether the attacker has a handle on lkc's executable.
func (a *exeAttack) holding() bool {
	data, _ := os.ReadFile(a.c.stdout)
	return holdingRe.Match(data)
}

// check waits for the attacker to finish and fails the test unless it got
// a handle, could write through none, and the binary is unchanged.
func (a *exeAttack) check() {
	t := a.e.t
	t.Helper()
	out := waitOutput(t, a.c.stdout, doneRe, 90*time.Second)
	a.checked = true
	t.Logf("attacker:\n%s", out)
	if !holdingRe.MatchString(out) {
		t.Errorf("the attacker got no handle on a process running lkc: the attack was not tried")
	}
	if regexp.MustCompile(`(?m)^WROTE `).MatchString(out) {
		t.Errorf("the container wrote to the lkc binary through a handle it reached")
	}
	if regexp.MustCompile(`(?m)^RECONFIGURED `).MatchString(out) {
		t.Errorf("the container reconfigured the file system behind a handle it reached")
	}
	if strings.Contains(out, "text file busy") {
		t.Errorf("a handle was still busy when the attacker gave up, which hides whether it is writable")
	}
	if after := sha256File(t, a.e.bin); after != a.before {
		t.Errorf("the lkc binary %s changed: sha256 %s -> %s", a.e.bin, a.before, after)
	}
}

func copyExecutable(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// joinPidNS makes a config join the pid namespace of host pid.
func joinPidNS(s *specs.Spec, pid int) {
	for i, ns := range s.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace {
			s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/pid", pid)
		}
	}
}

// TestSecInitExeIsProtected: a container with CAP_SYS_ADMIN and
// CAP_SYS_PTRACE (init is non-dumpable, so reaching its exe takes the
// latter) shares its pid namespace with a created container, and attacks
// that container's init, which runs lkc until it execs the process.
func TestSecInitExeIsProtected(t *testing.T) {
	e := newEnv(t)
	sha := sha256File(t, lkcBinary)
	a := startExeAttack(e, "CAP_SYS_ADMIN", "CAP_SYS_PTRACE")
	victim := e.secCreate(e.bundle([]string{"true"}, func(s *specs.Spec) { joinPidNS(s, a.c.pid) }))
	secWaitOutput(t, a.c.stdout, holdingRe)
	e.mustLkc("start", victim.id)
	e.waitStatus(victim.id, "stopped")
	a.check()
	if sha256File(t, lkcBinary) != sha {
		t.Errorf("the lkc binary under test %s changed", lkcBinary)
	}
}

// TestSecExecExeIsProtected: a container with CAP_SYS_ADMIN and
// CAP_SYS_PTRACE attacks the process an operator's plain `lkc exec ID
// /bin/true` starts in it, which runs lkc from joining the namespaces until
// it execs /bin/true. That takes the attacker a fraction of a millisecond to
// catch, hence the repeated execs.
func TestSecExecExeIsProtected(t *testing.T) {
	e := newEnv(t)
	a := startExeAttack(e, "CAP_SYS_ADMIN", "CAP_SYS_PTRACE")
	for i := 0; i < 100 && !a.holding(); i++ {
		e.mustLkc("exec", a.c.id, "/bin/true")
	}
	a.check()
}

// TestSecShebangSelfExeCannotOverwriteHost: a container's entrypoint is a
// script starting with #!/proc/self/exe, which makes the kernel execute
// whatever init runs from, with the container's credentials. The attacker,
// with CAP_SYS_ADMIN but not CAP_SYS_PTRACE, shares its pid namespace; it
// cannot reach the created init (non-dumpable) but can reach that lkc, for
// the few milliseconds it takes to refuse its arguments and exit, hence the
// repeated containers.
func TestSecShebangSelfExeCannotOverwriteHost(t *testing.T) {
	e := newEnv(t)
	a := startExeAttack(e, "CAP_SYS_ADMIN")
	root := e.writableRootfs()
	if err := os.WriteFile(filepath.Join(root, "evil.sh"), []byte("#!/proc/self/exe\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20 && !a.holding(); i++ {
		victim := e.secCreate(e.bundle([]string{"/evil.sh"}, func(s *specs.Spec) {
			s.Root.Path = root
			joinPidNS(s, a.c.pid)
		}))
		if i == 0 {
			// Init, non-dumpable and with more capabilities than the
			// container, is out of reach without CAP_SYS_PTRACE.
			time.Sleep(300 * time.Millisecond)
			if a.holding() {
				t.Errorf("without CAP_SYS_PTRACE the attacker reached the exe of a created init")
			}
		}
		e.mustLkc("start", victim.id)
		// lkc refuses "/evil.sh" as a command: proof the shebang ran it.
		secWaitOutput(t, victim.stderr, regexp.MustCompile(`unknown command "/evil\.sh"`))
		e.waitStatus(victim.id, "stopped")
		e.mustLkc("delete", victim.id)
	}
	a.check()
}

// TestSecInitIsNotDumpable: init is non-dumpable until it execs. A process
// with fewer capabilities than init cannot reach its /proc/<pid>/exe anyway
// (ptrace's capability rule), and in a user namespace the kernel makes init
// non-dumpable when it becomes root there; so both lkc and the prober run
// without CAP_SYS_PTRACE in their bounding set, which leaves the dumpable
// flag the only thing that keeps the prober, with init's uid and
// capabilities, out.
func TestSecInitIsNotDumpable(t *testing.T) {
	e := newEnv(t)
	setpriv := testutil.RequiresBinary(t, "setpriv")
	noPtrace := []string{"--bounding-set", "-sys_ptrace", "--"}
	id := e.id()
	out, errf := e.tempFile(), e.tempFile()
	defer out.Close()
	defer errf.Close()
	b := e.bundle([]string{"true"}, nil)
	cmd := exec.Command(setpriv, append(noPtrace, e.bin, "--root", e.root, "create", "--bundle", b, id)...)
	cmd.Stdout, cmd.Stderr = out, errf
	if err := cmd.Run(); err != nil {
		t.Fatalf("lkc create without CAP_SYS_PTRACE: %v: %s", err, readAll(errf))
	}
	pid, ok := e.state(id)["pid"].(float64)
	if !ok || pid <= 0 {
		t.Fatalf("state %s has no pid", id)
	}
	exe := fmt.Sprintf("/proc/%d/exe", int(pid))
	probe, err := exec.Command(setpriv, append(noPtrace, "readlink", "-v", exe)...).CombinedOutput()
	if err == nil {
		t.Errorf("a process without CAP_SYS_PTRACE read %s -> %q: init is dumpable", exe, strings.TrimSpace(string(probe)))
	} else if !strings.Contains(string(probe), "ermission denied") {
		t.Errorf("readlink %s: %v: %s; want permission denied", exe, err, probe)
	}
}
