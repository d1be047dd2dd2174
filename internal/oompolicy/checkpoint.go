package oompolicy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lkc-containers/lkc/internal/state"
)

// dumpHeadroom is what checkpoint raises the limit by, so that the held
// tasks finish their charge (and freeze on their way back to user space)
// and CRIU's parasite, charged to the container, has room.
func dumpHeadroom(limit uint64) uint64 { return 16<<20 + limit/50 }

// dump is a checkpoint in progress: first the freeze, then `lkc
// checkpoint` in its own session.
type dump struct {
	image   string
	started time.Time
	proc    *exec.Cmd
	done    chan error
	limit   uint64 // the limit before the headroom
	// orphan is a dump a killed worker started (proc is nil then): it is
	// no child of this worker, so the loop looks whether it still runs.
	orphan *dumpRecord
}

// checkpoint starts checkpoint's freeze. A task held by a v1 OOM cannot
// be frozen (it waits outside the freezer's reach, E4), a task throttled
// at v2's memory.high sleeps killable up to 2 s before it sees the
// freezer, and CRIU needs every task frozen: so the freezer is asked
// first, then the limit is raised by the headroom (v2: memory.max and
// memory.high), so that the held tasks finish their charge and freeze
// before they run user code again, without reaching the kernel's OOM
// killer meanwhile. checkDump goes on from there.
func (s *Service) checkpoint(a *armed, dir string) error {
	if a.freezer == "" {
		return fmt.Errorf("checkpoint: the container has no freezer cgroup")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	limit, err := readUint(a.dir, a.limitFile())
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	d := &dump{image: filepath.Join(dir, a.e.ID+"-"+time.Now().UTC().Format("20060102T150405.000")), started: time.Now(), limit: limit}
	// Recorded before the freeze: a worker killed from here on leaves its
	// successor what it needs to go on or to thaw (resumeDump).
	if err := writeDumpRecord(a, &dumpRecord{Image: d.image, Limit: limit}); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := s.freezeWithHeadroom(a, limit); err != nil {
		thaw(a)
		removeDumpRecord(a)
		return fmt.Errorf("checkpoint: %w", err)
	}
	a.dump = d
	s.emit(a, "policy-checkpoint", map[string]any{"image": d.image, "result": "freezing", "headroom": dumpHeadroom(limit), "ms": ms(time.Since(a.detected))})
	dieAt("freezing")
	return nil
}

// freezeWithHeadroom asks the freezer to freeze the container and raises
// its limit from limit by the headroom, unless it was raised already (a
// killed worker's freeze that its successor resumes).
func (s *Service) freezeWithHeadroom(a *armed, limit uint64) error {
	if err := freeze(a, true); err != nil {
		return fmt.Errorf("freezing: %w", err)
	}
	now, err := readUint(a.dir, a.limitFile())
	if err == nil && now == limit {
		err = s.raise(a, limit, limit+dumpHeadroom(limit))
	}
	return err
}

func thaw(a *armed) { freeze(a, false) }

// freeze asks the container's freezer to freeze (on) or thaw it.
func freeze(a *armed, on bool) error {
	file, v := freezerFile(a, on)
	return os.WriteFile(file, []byte(v), 0)
}

// freezerFile is the file that freezes (on) or thaws the container and
// what to write there: v1 freezer.state, v2 cgroup.freeze.
func freezerFile(a *armed, on bool) (string, string) {
	file, v := "freezer.state", map[bool]string{true: "FROZEN", false: "THAWED"}[on]
	if a.v2 {
		file, v = "cgroup.freeze", map[bool]string{true: "1", false: "0"}[on]
	}
	return filepath.Join(a.freezer, file), v
}

// frozen says whether every task of the container is frozen: v1
// freezer.state FROZEN, v2 `frozen 1` in cgroup.events.
func frozen(a *armed) bool {
	if a.v2 {
		b, err := os.ReadFile(filepath.Join(a.freezer, "cgroup.events"))
		return err == nil && strings.Contains(string(b), "frozen 1")
	}
	b, err := os.ReadFile(filepath.Join(a.freezer, "freezer.state"))
	return err == nil && strings.TrimSpace(string(b)) == "FROZEN"
}

// checkDump moves a checkpoint on: once the cgroup is frozen it starts
// the dump; a dump that ends is recorded. A freeze or dump past the
// deadline is given up: the dump killed, the container thawed, and the
// fallback acts. It says whether the check is over (a dump in flight or
// done: the container is the dump's or gone).
func (s *Service) checkDump(a *armed) bool {
	d := a.dump
	if d.orphan != nil {
		return s.checkOrphan(a)
	}
	if d.proc == nil {
		if !frozen(a) {
			if time.Since(d.started) < a.set.Deadline {
				return true
			}
			s.dumpFailed(a, d, fmt.Sprintf("not frozen within the deadline (%v)", a.set.Deadline))
			return false
		}
		// Frozen, even if only seen past the deadline: the dump starts,
		// and four deadlines bound it. Given up now, the container would
		// be thawed under the lkc checkpoint just started.
		if err := s.startDump(a); err != nil {
			s.dumpFailed(a, d, err.Error())
			return false
		}
		return true
	}
	select {
	case err := <-d.done:
		a.dump = nil
		if err != nil {
			s.dumpFailed(a, d, "lkc checkpoint: "+err.Error())
			return false
		}
		// The container is gone: its events go to the daemon's log, and a
		// restore at the same cgroup path is a new container to arm.
		s.deps.Logf("oom: %s: checkpointed to %s in %.0f ms", a.name(), d.image, ms(time.Since(d.started)))
		s.disarm(a, false)
		return true
	default:
	}
	if time.Since(d.started) >= 4*a.set.Deadline {
		syscall.Kill(-d.pid(), syscall.SIGKILL)
		if d.proc != nil {
			<-d.done
		}
		a.dump = nil
		s.dumpFailed(a, d, "the dump overran four deadlines")
		return false
	}
	return true
}

// pid is the process of the dump (its session's leader).
func (d *dump) pid() int {
	if d.orphan != nil {
		return d.orphan.Pid
	}
	return d.proc.Process.Pid
}

// dumpShell runs `lkc checkpoint` ("$@" after the freezer's file and
// its thawed value) and thaws the container when it fails: a dump that
// fails after `lkc daemon stop`, or with no worker left, must not leave
// the container frozen for a daemon that is gone (the worker, when there
// is one, thaws too). Its $0 names it in /proc (findDump).
const dumpShell = `f=$1 v=$2; shift 2; "$@"; rc=$?; [ $rc -eq 0 ] || { echo "$v" > "$f"; } 2>/dev/null; exit $rc`

// dumpShellName is dumpShell's $0.
const dumpShellName = "lkc-oom-dump"

// startDump runs `lkc checkpoint` on the frozen container, under
// dumpShell, in its own session: a worker that dies does not kill CRIU
// mid-dump.
func (s *Service) startDump(a *armed) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	d := a.dump
	file, thawed := freezerFile(a, false)
	// "--": an id may begin with '-'.
	d.proc = exec.Command("/bin/sh", "-c", dumpShell, dumpShellName, file, thawed,
		exe, "--root", a.e.Root, "checkpoint", "--image-path", d.image, "--", a.e.ID)
	d.proc.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := os.Create(d.image + ".log")
	if err == nil {
		d.proc.Stdout, d.proc.Stderr = out, out
		defer out.Close()
	}
	if err := d.proc.Start(); err != nil {
		return fmt.Errorf("starting lkc checkpoint: %w", err)
	}
	d.done = make(chan error, 1)
	go func() { d.done <- d.proc.Wait() }()
	dieAt("started")
	rec := &dumpRecord{Image: d.image, Limit: d.limit, Pid: d.proc.Process.Pid}
	rec.Start, _ = state.StartTime(rec.Pid)
	if err := writeDumpRecord(a, rec); err != nil {
		s.deps.Logf("oom: %s: %v", a.name(), err)
	}
	s.emit(a, "policy-checkpoint", map[string]any{"image": d.image, "result": "dumping", "pid": d.proc.Process.Pid, "ms": ms(time.Since(a.detected))})
	dieAt("dumping")
	return nil
}

// dumpFailed gives up a checkpoint: the container is thawed, and the
// fallback acts on this hold and on the next ones until the limit the
// headroom raised is back (limitBack): with the raise the tasks usually
// leave the hold, and without this each failed dump would raise the limit
// again, a grow without a ceiling.
func (s *Service) dumpFailed(a *armed, d *dump, why string) {
	a.dump = nil
	thaw(a)
	// What a dump that left init running wrote is no image a restore
	// could use, and must not be taken for one; its log stays. (A dump
	// whose init is gone did finish: CRIU kills the tasks last.)
	if state.Alive(a.initPid, a.initStart) {
		if err := os.RemoveAll(d.image); err != nil {
			s.deps.Logf("oom: %s: removing the failed image: %v", a.name(), err)
		}
	}
	removeDumpRecord(a)
	s.emit(a, "policy-checkpoint", map[string]any{"result": "failed", "reason": why})
	a.limitBack = d.limit
	a.stageAt = time.Time{} // the fallback acts at the next check
}

// putLimitBack lowers the limit a failed checkpoint raised, once the
// usage fits a headroom beneath it again (the fallback freed memory): a
// limit written beneath the usage would have the kernel reclaim, stall
// the loop (v1) or kill (v2).
func (s *Service) putLimitBack(a *armed) {
	to := a.limitBack
	usage, err := readUint(a.dir, a.usageFile())
	if err != nil || usage+headroom(to) > to {
		return
	}
	limit, err := readUint(a.dir, a.limitFile())
	if err == nil && limit > to {
		err = s.lower(a, limit, to)
	}
	if err != nil {
		s.deps.Logf("oom: %s: putting the limit back to %d: %v", a.name(), to, err)
		return
	}
	a.limitBack = 0
	s.emit(a, "policy-checkpoint", map[string]any{"result": "limit back", "limit": to})
}

// lower moves the limit from one value down to another: the limit
// before memory+swap (v1 keeps memory+swap at least the limit), that to
// the new limit plus the swap allowance; v2
// memory.high (when the service owns it) before memory.max.
func (s *Service) lower(a *armed, from, to uint64) error {
	if a.v2 {
		if a.ownsHigh {
			if err := writeInt(a.dir, "memory.high", int64(to-headroom(to))); err != nil {
				return err
			}
		}
		return writeInt(a.dir, "memory.max", int64(to))
	}
	sw, err := readUint(a.dir, "memory.memsw.limit_in_bytes")
	if err := writeInt(a.dir, "memory.limit_in_bytes", int64(to)); err != nil {
		return err
	}
	if err == nil && sw < 1<<62 {
		return writeInt(a.dir, "memory.memsw.limit_in_bytes", int64(to+s.swapAllowance(a, sw, from)))
	}
	return nil
}
