package state

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// ProcRoot is where processes are looked up; tests point it elsewhere.
var ProcRoot = "/proc"

// StartTime returns the start time (clock ticks since boot, field 22 of
// /proc/<pid>/stat) that, with the pid, identifies one process for its life.
func StartTime(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", ProcRoot, pid))
	if err != nil {
		return 0, err
	}
	return parseStartTime(data)
}

// parseStartTime reads field 22. The command name (field 2) may hold
// spaces and ')', so fields are counted from past the last ')'.
func parseStartTime(stat []byte) (uint64, error) { return statField(stat, 22) }

// pfKthread is PF_KTHREAD in the flags of /proc/<pid>/stat (field 9).
const pfKthread = 0x00200000

// KernelThread reports whether pid is a kernel thread: it has no user
// memory and no cgroup of its own choosing, and moving one (kthreadd
// into a group: every kernel thread made after it follows) is never
// what a user meant.
func KernelThread(pid int) (bool, error) {
	data, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", ProcRoot, pid))
	if err != nil {
		return false, err
	}
	flags, err := statField(data, 9)
	if err != nil {
		return false, err
	}
	return flags&pfKthread != 0, nil
}

// statField is numeric field n (counted from 1, as proc(5) does; n > 2)
// of a /proc/<pid>/stat line.
func statField(stat []byte, n int) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat line")
	}
	fields := bytes.Fields(stat[i+1:])
	if len(fields) < n-2 {
		return 0, fmt.Errorf("malformed stat line: %d fields", len(fields)+2)
	}
	return strconv.ParseUint(string(fields[n-3]), 10, 64)
}

// Alive reports whether the process pid that started at start still runs
// (a zombie counts as gone).
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", ProcRoot, pid))
	if err != nil {
		return false
	}
	got, err := parseStartTime(data)
	if err != nil || got != start {
		return false
	}
	return !exited(data)
}

// exited says a stat line is a zombie's or a dead task's.
func exited(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}

// LiveTask is the /proc directory of a task of process pid that has not
// exited, its leader's when it runs: a leader that exited while other
// threads run on is a zombie whose files show little (its cgroups as the
// root's), and a live thread speaks for the process. It is the
// process's own directory when no task runs.
func LiveTask(pid int) string {
	dir := fmt.Sprintf("%s/%d", ProcRoot, pid)
	if data, err := os.ReadFile(dir + "/stat"); err != nil || !exited(data) {
		return dir
	}
	tasks, _ := os.ReadDir(dir + "/task")
	for _, t := range tasks {
		task := dir + "/task/" + t.Name()
		if data, err := os.ReadFile(task + "/stat"); err == nil && !exited(data) {
			return task
		}
	}
	return dir
}
