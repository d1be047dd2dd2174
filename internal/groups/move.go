package groups

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/state"
)

// MoveDieEnv, set to the path of a file in lkc's environment, makes a
// Move SIGKILL its own process right after its first cgroup.procs write,
// if it can remove that file: the crash between two hierarchies the
// integration test of the move record needs, once.
const MoveDieEnv = "LKC_TEST_GROUP_MOVE_DIE"

// moveRecordName is the record of a Move under way, in the groups'
// directory: written before the first cgroup.procs write, removed after
// the last, so a Move killed in between (leaving a process in the group
// in some v1 hierarchies and not in others) is finished by whoever takes
// the groups' lock next.
const moveRecordName = ".move.json"

// moveRecord is what finishing a killed Move needs.
type moveRecord struct {
	Group string       `json:"group"`
	Procs []movingProc `json:"procs"`
}

// movingProc is one process of a Move: Start tells it from a later
// process of the same pid, From is the cgroup directory it left in each
// hierarchy (keyed as Manager.Paths keys them), where it goes back when
// the move cannot be finished.
type movingProc struct {
	Pid   int               `json:"pid"`
	Start uint64            `json:"start"`
	From  map[string]string `json:"from"`
}

// Move puts whole thread groups into the group: each pid is written to
// cgroup.procs in every hierarchy (a thread's id moves its process).
// Every pid is checked before any is moved, and the move is all or
// nothing: when a hierarchy refuses a pid (v1: a cpuset without CPUs, a
// cpu cgroup without RT runtime for a real-time task), each write made so
// far is undone, every pid back in the cgroups it was in: a process half
// in a group is in no state anyone asked for. A Move killed between two
// writes is finished by the next holder of the groups' lock (its
// record). It holds the groups' lock: a delete under way would otherwise
// see its cgroup made again (ready), with the processes in it, after it
// removed it.
func (s *Store) Move(name string, pids []int) error {
	for _, pid := range pids {
		if pid <= 0 {
			return fmt.Errorf("pid %d: not a process id", pid)
		}
		if err := movable(pid); err != nil {
			return err
		}
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	_, m, err := s.ready(name)
	if err != nil {
		return err
	}
	rec, err := s.planMove(name, m, pids)
	if err != nil {
		return fmt.Errorf("moving into group %s: %w", name, err)
	}
	if err := s.writeMoveRecord(rec); err != nil {
		return err
	}
	die := os.Getenv(MoveDieEnv)
	var done moves
	for _, p := range rec.Procs {
		if err := moveOne(m, p, &done, die); err != nil {
			err = fmt.Errorf("moving pid %d into group %s: %w%s", p.Pid, name, err, done.undo())
			s.removeMoveRecord()
			return err
		}
	}
	return s.removeMoveRecord()
}

// movable refuses a process no group should take: a kernel thread (the
// kernel takes some: kthreadd moved into a group would put every kernel
// thread made after it there), and a process of another pid namespace
// than lkc's, a container's, whose cgroup is the container's: moved
// out, it would escape the container's limits and stats (lkc update
// changes those). The rules engine leaves both alone too.
func movable(pid int) error {
	kthread, err := state.KernelThread(pid)
	if err != nil {
		return fmt.Errorf("pid %d: no such process", pid)
	}
	if kthread {
		return fmt.Errorf("pid %d: a kernel thread, which stays where the kernel puts it", pid)
	}
	own, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return fmt.Errorf("reading lkc's pid namespace: %w", err)
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return fmt.Errorf("pid %d: no such process", pid)
	}
	if ns != own {
		return fmt.Errorf("pid %d: in another pid namespace (a container's), whose cgroup it keeps (lkc update changes a container's limits)", pid)
	}
	return nil
}

// planMove reads where each pid is now, before anything moves.
func (s *Store) planMove(name string, m cgroups.Manager, pids []int) (*moveRecord, error) {
	rec := &moveRecord{Group: name}
	for _, pid := range pids {
		from, err := s.cgroupsOf(pid)
		if err != nil {
			return nil, err
		}
		for _, h := range sortedHiers(m) {
			if from[h] == "" {
				return nil, fmt.Errorf("pid %d: not in hierarchy %q", pid, h)
			}
		}
		start, err := state.StartTime(pid)
		if err != nil {
			return nil, fmt.Errorf("pid %d: no such process", pid)
		}
		rec.Procs = append(rec.Procs, movingProc{Pid: pid, Start: start, From: from})
	}
	return rec, nil
}

// move is one cgroup.procs write of a Move: pid left cgroup directory
// from.
type move struct {
	pid  int
	from string
}

// moves are a Move's writes, in order.
type moves []move

// moveOne writes p's pid into each of m's directories, in a fixed order,
// recording in done where it came from in each. die is MoveDieEnv's file.
func moveOne(m cgroups.Manager, p movingProc, done *moves, die string) error {
	paths := m.Paths()
	for _, h := range sortedHiers(m) {
		if err := writeProcs(paths[h], p.Pid); err != nil {
			return err
		}
		*done = append(*done, move{p.Pid, p.From[h]})
		if die != "" && os.Remove(die) == nil {
			unix.Kill(os.Getpid(), unix.SIGKILL)
		}
	}
	return nil
}

// sortedHiers are m's hierarchies in the order a move writes them.
func sortedHiers(m cgroups.Manager) []string {
	paths := m.Paths()
	hiers := make([]string, 0, len(paths))
	for h := range paths {
		hiers = append(hiers, h)
	}
	sort.Strings(hiers)
	return hiers
}

// undo moves each process back where it was, last move first, and says
// how that went, as the end of Move's error.
func (d moves) undo() string {
	var failed []string
	for i := len(d) - 1; i >= 0; i-- {
		if err := writeProcs(d[i].from, d[i].pid); err != nil && !errors.Is(err, unix.ESRCH) {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) == 0 {
		return " (nothing moved)"
	}
	return "; and moving back failed: " + strings.Join(failed, "; ")
}

// finishMove finishes the Move a killed lkc left half done (its record),
// with the groups' lock held: each recorded process that still runs is
// written into the group in every hierarchy it is not in yet, as the
// move asked. When that cannot be done (the group is gone, or a
// hierarchy refuses), every recorded process goes back to the cgroups it
// left, as a refused Move leaves it. Best effort: the record goes either
// way, so one that cannot be finished does not stop every later command.
func (s *Store) finishMove() {
	path := filepath.Join(s.Dir, moveRecordName)
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	defer os.Remove(path)
	rec := &moveRecord{}
	if json.Unmarshal(data, rec) != nil {
		return
	}
	var live []movingProc
	for _, p := range rec.Procs {
		if state.Alive(p.Pid, p.Start) {
			live = append(live, p)
		}
	}
	if s.completeMove(rec.Group, live) != nil {
		s.moveBack(rec.Group, live)
	}
}

// moveBack writes each of procs back to the cgroup it left in every
// hierarchy where it sits in group name's cgroup.
func (s *Store) moveBack(name string, procs []movingProc) {
	m, err := s.Manager(name)
	if err != nil {
		return
	}
	for _, p := range procs {
		cur, err := s.cgroupsOf(p.Pid)
		if err != nil {
			continue
		}
		for h, dir := range m.Paths() {
			if cur[h] == dir && p.From[h] != "" {
				writeProcs(p.From[h], p.Pid)
			}
		}
	}
}

// completeMove writes each of procs into group name's cgroup in every
// hierarchy; the first failure stops it.
func (s *Store) completeMove(name string, procs []movingProc) error {
	if len(procs) == 0 {
		return nil
	}
	_, m, err := s.ready(name)
	if err != nil {
		return err
	}
	var done moves
	for _, p := range procs {
		if err := moveOne(m, p, &done, ""); err != nil {
			return err
		}
	}
	return nil
}

// settleMove finishes a Move, or a make or update of a group's limits,
// a killed lkc left half done, for a reader that does not otherwise take
// the groups' lock (list, stats), so it never shows a process half in a
// group or limits the cgroup does not have. Without a record it costs
// two stats.
func (s *Store) settleMove() {
	_, merr := os.Stat(filepath.Join(s.Dir, moveRecordName))
	_, lerr := os.Stat(filepath.Join(s.Dir, limitsRecordName))
	if merr != nil && lerr != nil {
		return
	}
	if unlock, err := s.lock(); err == nil {
		unlock()
	}
}

func (s *Store) writeMoveRecord(rec *moveRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	path := filepath.Join(s.Dir, moveRecordName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("recording the move: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("recording the move: %w", err)
	}
	return nil
}

func (s *Store) removeMoveRecord() error {
	if err := os.Remove(filepath.Join(s.Dir, moveRecordName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the move's record: %w", err)
	}
	return nil
}

// cgroupsOf is the directory of pid's cgroup in each hierarchy of s's
// host, keyed as Manager.Paths keys them (a v1 hierarchy's controllers,
// "" for v2), as a live thread of it says: an exited leader's would be
// the root's, where undoing a move would send the process.
func (s *Store) cgroupsOf(pid int) (map[string]string, error) {
	data, err := os.ReadFile(state.LiveTask(pid) + "/cgroup")
	if err != nil {
		return nil, fmt.Errorf("pid %d: reading its cgroups: %w", pid, err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = filepath.Join(s.Host.Root, parts[2])
		} else {
			out[parts[1]] = filepath.Join(s.Host.Root, parts[1], parts[2])
		}
	}
	return out, nil
}

// Join moves the calling process (all its threads) into the group, for
// `lkc group exec`, which then execs the command.
func (s *Store) Join(name string) error { return s.Move(name, []int{os.Getpid()}) }

func writeProcs(dir string, pid int) error {
	p := filepath.Join(dir, "cgroup.procs")
	err := os.WriteFile(p, []byte(strconv.Itoa(pid)), 0)
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path once in the message
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}
