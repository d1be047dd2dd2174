package rulesengine

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/lkc-containers/lkc/internal/rules"
)

// describe reads what the matcher knows of a process from /proc, and its
// start time (clock ticks since boot), which tells a pid's reuse apart.
func describe(pid int) (*rules.Process, uint64, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return nil, 0, err
	}
	// The comm is in parentheses and may hold anything, ')' included.
	i := bytes.LastIndexByte(stat, ')')
	j := bytes.IndexByte(stat, '(')
	if i < 0 || j < 0 || j > i {
		return nil, 0, fmt.Errorf("%s/stat: malformed", dir)
	}
	f := strings.Fields(string(stat[i+1:])) // state ppid pgrp session ... starttime is the 20th
	if len(f) < 20 {
		return nil, 0, fmt.Errorf("%s/stat: malformed", dir)
	}
	p := &rules.Process{Pid: pid, Comm: string(stat[j+1 : i])}
	p.PGID, _ = strconv.Atoi(f[2])
	p.SID, _ = strconv.Atoi(f[3])
	start, _ := strconv.ParseUint(f[19], 10, 64)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return nil, 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "Uid":
			if ids := strings.Fields(v); len(ids) > 1 {
				p.UID, _ = strconv.Atoi(ids[1])
			}
		case "Gid":
			if ids := strings.Fields(v); len(ids) > 1 {
				g, _ := strconv.Atoi(ids[1])
				p.GIDs = append([]int{g}, p.GIDs...)
			}
		case "Groups":
			for _, s := range strings.Fields(v) {
				if g, err := strconv.Atoi(s); err == nil {
					p.GIDs = append(p.GIDs, g)
				}
			}
		}
	}
	p.Exe, _ = os.Readlink(dir + "/exe") // a kernel thread has none
	if cmd, err := os.ReadFile(dir + "/cmdline"); err == nil && len(cmd) > 0 {
		p.Cmdline = strings.Split(strings.TrimSuffix(string(cmd), "\x00"), "\x00")
	}
	return p, start, nil
}

// cgroupsOf reads /proc/<pid>/cgroup: hierarchy (its controllers as
// listed there, "" for v2) to the path within it.
func cgroupsOf(pid int) (map[string]string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 {
			out[parts[1]] = parts[2]
		}
	}
	return out, nil
}

// children lists the children of every thread of a process
// (/proc/<pid>/task/*/children: a child belongs to the thread that
// forked it).
func children(pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, _ := os.ReadDir(dir)
	var out []int
	for _, t := range tasks {
		data, _ := os.ReadFile(dir + "/" + t.Name() + "/children")
		for _, s := range strings.Fields(string(data)) {
			if c, err := strconv.Atoi(s); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// under reports whether cgroup path p is dir or beneath it.
func under(p, dir string) bool {
	return dir == "/" || p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}
