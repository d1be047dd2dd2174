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

func parseStartTime(stat []byte) (uint64, error) {
	// The command name (field 2) may hold spaces and ')': skip past the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat line")
	}
	fields := bytes.Fields(stat[i+1:])
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return 0, fmt.Errorf("malformed stat line: %d fields", len(fields)+2)
	}
	return strconv.ParseUint(string(fields[19]), 10, 64)
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
	i := bytes.LastIndexByte(data, ')')
	return i+2 < len(data) && data[i+2] != 'Z' && data[i+2] != 'X'
}
