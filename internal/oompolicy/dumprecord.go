package oompolicy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lkc-containers/lkc/internal/state"
)

// dumpRecordFile is a checkpoint in flight, beside the container's
// state.json: written before the freeze is asked, again with the pid of
// `lkc checkpoint` once the dump runs, removed when the dump fails, and
// gone with the container's directory when the dump stops it. A worker
// killed meanwhile leaves the container frozen with its limit raised and
// the dump (in its own session) running or ended; the successor reads the
// record as it arms the container (resumeDump) and goes on from there, so
// no container stays frozen for a worker that died.
const dumpRecordFile = "oom-dump.json"

// dumpRecord is what resumeDump needs.
type dumpRecord struct {
	Image string `json:"image"`
	Limit uint64 `json:"limit"` // the limit before the headroom
	Pid   int    `json:"pid,omitempty"`
	Start uint64 `json:"start,omitempty"` // the dump's start time, which tells it from a later process of its pid
}

func dumpRecordPath(a *armed) string { return filepath.Join(a.e.Root, a.e.ID, dumpRecordFile) }

// writeDumpRecord writes the record whole (temp file, rename).
func writeDumpRecord(a *armed, r *dumpRecord) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	p := dumpRecordPath(a)
	if err := os.WriteFile(p+".tmp", data, 0o600); err != nil {
		return fmt.Errorf("recording the dump: %w", err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		os.Remove(p + ".tmp")
		return fmt.Errorf("recording the dump: %w", err)
	}
	return nil
}

func removeDumpRecord(a *armed) { os.Remove(dumpRecordPath(a)) }

// resumeDump takes on, as a container is armed, the checkpoint a killed
// worker left in flight: a dump still running is followed (checkOrphan);
// a freeze not yet dumped is asked again and goes on as any (checkDump);
// a dump that ended is judged by what it left.
func (s *Service) resumeDump(a *armed) {
	data, err := os.ReadFile(dumpRecordPath(a))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	r := &dumpRecord{}
	if err == nil {
		err = json.Unmarshal(data, r)
	}
	if err == nil && (r.Image == "" || r.Limit == 0 || !strings.HasPrefix(filepath.Base(r.Image), a.e.ID+"-")) {
		err = errors.New("not a dump of this container")
	}
	if err != nil {
		// Unusable: the container may be frozen by the lost dump.
		s.deps.Logf("oom: %s: %s: %v; thawing the container", a.name(), dumpRecordPath(a), err)
		thaw(a)
		removeDumpRecord(a)
		return
	}
	a.detected = time.Now()
	d := &dump{image: r.Image, started: time.Now(), limit: r.Limit}
	a.dump = d
	if r.Pid == 0 {
		// A worker killed between starting the dump and recording its pid:
		// a second dump would run beside it on its image, and fail.
		r.Pid, r.Start = findDump(r.Image)
	}
	switch {
	case r.Pid != 0:
		d.orphan = r
		s.deps.Logf("oom: %s: following the dump a killed worker started (pid %d)", a.name(), r.Pid)
	default:
		s.deps.Logf("oom: %s: resuming the checkpoint a killed worker was freezing for", a.name())
		if err := s.freezeWithHeadroom(a, r.Limit); err != nil {
			s.dumpFailed(a, d, err.Error())
		}
	}
}

// findDump finds the dump (dumpShell) of image by its command line in
// /proc, by its name and image (not the script, which another lkc
// version's worker may have written otherwise): its pid and start time,
// 0 when none runs.
func findDump(image string) (int, uint64) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		argv := strings.Split(string(b), "\x00")
		if err != nil || len(argv) < 4 || argv[1] != "-c" || argv[3] != dumpShellName || !slices.Contains(argv, image) {
			continue
		}
		if start, err := state.StartTime(pid); err == nil {
			return pid, start
		}
	}
	return 0, 0
}

// checkOrphan follows a dump a killed worker started: it is not this
// worker's child, so whether it runs is read from /proc each check. Once
// it ended, a container whose init is gone was stopped by the dump (its
// image is whole, even if `lkc checkpoint` died before it deleted the
// container); one whose init runs was left by a dump that failed.
func (s *Service) checkOrphan(a *armed) bool {
	d := a.dump
	if state.Alive(d.orphan.Pid, d.orphan.Start) {
		if time.Since(d.started) < 4*a.set.Deadline {
			return true
		}
		syscall.Kill(-d.orphan.Pid, syscall.SIGKILL)
		s.dumpFailed(a, d, "the dump overran four deadlines")
		return false
	}
	if state.Alive(a.initPid, a.initStart) {
		s.dumpFailed(a, d, "lkc checkpoint ended without stopping the container")
		return false
	}
	a.dump = nil
	s.deps.Logf("oom: %s: checkpointed to %s", a.name(), d.image)
	s.disarm(a, false)
	return true
}

// DieEnv, set to STEP:FILE in the daemon's environment, makes the worker
// SIGKILL itself right after the checkpoint step STEP (freezing: the
// freeze asked and recorded; started: lkc checkpoint started, its pid not
// recorded yet; dumping: its pid recorded), if it can
// remove FILE: the crash the integration tests of resumeDump need, once.
const DieEnv = "LKC_TEST_OOM_CHECKPOINT_DIE"

func dieAt(step string) {
	if at, file, ok := strings.Cut(os.Getenv(DieEnv), ":"); ok && at == step {
		die(file)
	}
}

// RaiseDieEnv, set to FILE in the daemon's environment, makes the worker
// SIGKILL itself in a v1 raise (grow, a checkpoint's headroom) after it
// wrote memory+swap and before the limit, if it can remove FILE: the
// crash the integration test of the raise's swap allowance needs, once.
const RaiseDieEnv = "LKC_TEST_OOM_RAISE_DIE"

// die SIGKILLs the worker if it can remove file (a hook's, once).
func die(file string) {
	if os.Remove(file) == nil {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
}
