package integration

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestConformKillPausedSIGKILL: SIGKILL to a paused container, to its init
// or to all its processes, stops it, as with runc, which thaws the cgroup
// after the signal: v1's freezer holds a frozen task until it is thawed,
// SIGKILL or not, and containerd's shim and Podman wait for the exit.
func TestConformKillPausedSIGKILL(t *testing.T) {
	e := newEnv(t)
	for _, kill := range [][]string{{"kill"}, {"kill", "--all"}} {
		id, _ := e.runningPid(nil)
		e.mustLkc("pause", id)
		e.mustLkc(append(kill, id, "KILL")...)
		e.waitStatus(id, "stopped")
		e.mustLkc("delete", id)
		e.assertIDGone(id)
	}
}

// TestConformKillSignalZero: signal 0 is runc's liveness check: `kill ID
// 0` and `kill --all ID 0` succeed while the container lives, paused or
// not, and change nothing; once init is gone `kill ID 0` fails (containerd
// and Podman read that as "stopped") while `kill --all ID 0` finds nothing
// to signal and succeeds. An empty signal is SIGTERM, as in runc.
func TestConformKillSignalZero(t *testing.T) {
	e := newEnv(t)
	id, _ := e.runningPid(nil)
	for _, status := range []string{"running", "paused"} {
		if status == "paused" {
			e.mustLkc("pause", id)
		}
		e.mustLkc("kill", id, "0")
		e.mustLkc("kill", "--all", id, "0")
		if st := e.state(id); st["status"] != status {
			t.Fatalf("kill 0 of a %s container left it %v", status, st["status"])
		}
	}
	e.mustLkc("resume", id)
	e.mustLkc("kill", id, "") // SIGTERM, which sleep as pid 1 ignores
	e.mustLkc("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	e.failLkc(`^lkc: kill: .*`+id+`.*stopped`, "kill", id, "0")
	e.mustLkc("kill", "--all", id, "0")
	e.failLkc(`^lkc: kill: invalid signal "65"$`, "kill", id, "65")
}

// TestConformExecUserKeepsGroup: `exec --user UID` without a group keeps
// the group of the container's process, as runc does; only UID:GID sets
// both.
func TestConformExecUserKeepsGroup(t *testing.T) {
	e := newEnv(t)
	id, _ := e.runningPid(func(s *specs.Spec) { s.Process.User = specs.User{UID: 0, GID: 100} })
	ids := []string{"sh", "-c", "echo $(id -u):$(id -g)"}
	if out := e.mustLkc(append([]string{"exec", "--user", "1000", id}, ids...)...); out != "1000:100\n" {
		t.Errorf("exec --user 1000: %q, want 1000:100 (the container's group)", out)
	}
	if out := e.mustLkc(append([]string{"exec", "--user", "1000:7", id}, ids...)...); out != "1000:7\n" {
		t.Errorf("exec --user 1000:7: %q, want 1000:7", out)
	}
}

// TestConformExecFailureExits255: when exec runs no process (a command
// the container lacks, a container that does not exist) lkc exits 255, as
// runc does, so a caller tells it from the exit status of the process;
// the process's own status, 1 included, is passed on as it is.
func TestConformExecFailureExits255(t *testing.T) {
	e := newEnv(t)
	id, _ := e.runningPid(nil)
	for _, args := range [][]string{{"exec", id, "no-such-command"}, {"exec", "no-such-container", "true"}} {
		r := e.lkc(args...)
		e.checkOneLineFailure(r, `^lkc: exec: `, args)
		if r.code != 255 {
			t.Errorf("lkc %v: exit %d, want 255", args, r.code)
		}
	}
	if r := e.lkc("exec", id, "sh", "-c", "exit 1"); r.code != 1 {
		t.Errorf("a process that exits 1: %v, want exit 1", r)
	}
}

// TestConformExecRelativeCwdRefused: the runtime spec's process.cwd is an
// absolute path; runc refuses a relative --cwd, and so does lkc, as it
// refuses one in --process.
func TestConformExecRelativeCwdRefused(t *testing.T) {
	e := newEnv(t)
	id, _ := e.runningPid(nil)
	e.failLkc(`^lkc: exec: --cwd "tmp": not an absolute path`, "exec", "--cwd", "tmp", id, "pwd")
	if out := e.mustLkc("exec", "--cwd", "/tmp", id, "pwd"); out != "/tmp\n" {
		t.Errorf("exec --cwd /tmp: %q", out)
	}
}

// TestConformPsStoppedContainer: `ps` of a stopped container that is not
// deleted lists what is left in its cgroup, as runc does (`kill --all`
// signals the same processes): here nothing, an empty JSON list.
func TestConformPsStoppedContainer(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"true"}, nil), id)
	e.waitStatus(id, "stopped")
	if out := e.mustLkc("ps", "--format", "json", id); strings.TrimSpace(out) != "[]" {
		t.Errorf("ps --format json of a stopped container: %q, want []", out)
	}
	if out := e.mustLkc("ps", id); strings.Count(out, "\n") != 1 || !strings.Contains(out, "PID") {
		t.Errorf("ps of a stopped container: %q, want ps's header alone", out)
	}
	e.mustLkc("delete", id)
}

// TestConformUpdateKernelMemoryFlags: runc's update takes
// --kernel-memory and --kernel-memory-tcp (and ignores them, with a
// warning); lkc takes them as it takes memory.kernel and kernelTCP from
// --resources (docs/cgroups.md: kernels from 6.1 ignore the limit too), so
// a script that passes them does not fail on lkc alone.
func TestConformUpdateKernelMemoryFlags(t *testing.T) {
	e := newEnv(t)
	id, _ := e.runningPid(nil)
	e.mustLkc("update", "--kernel-memory", "64m", "--kernel-memory-tcp", "32m", id)
	e.failLkc(`^lkc: update: --kernel-memory "lots": not a memory size`, "update", "--kernel-memory", "lots", id)
}

// TestConformPauseCreated: runc pauses a created container too: it reads
// paused, refuses start (and exec without --ignore-paused) until resumed,
// is created again after resume and then starts; paused, delete --force
// removes it.
func TestConformPauseCreated(t *testing.T) {
	e := newEnv(t)
	b := e.bundle([]string{"sleep", "1000"}, nil)
	id := e.id()
	e.mustLkc("create", "--bundle", b, id)
	e.mustLkc("pause", id)
	if st := e.state(id); st["status"] != "paused" {
		t.Fatalf("created container after pause: %v, want paused", st["status"])
	}
	e.failLkc(`^lkc: start: .*cannot start container `+id+`: it is paused$`, "start", id)
	e.failLkc(`it is paused \(use --ignore-paused to override\)$`, "exec", id, "true")
	e.mustLkc("resume", id)
	if st := e.state(id); st["status"] != "created" {
		t.Fatalf("paused created container after resume: %v, want created", st["status"])
	}
	e.mustLkc("start", id)
	e.waitStatus(id, "running")

	id = e.id()
	e.mustLkc("create", "--bundle", b, id)
	e.mustLkc("pause", id)
	e.mustLkc("delete", "--force", id)
	e.assertIDGone(id)
}
