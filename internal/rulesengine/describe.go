package rulesengine

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/lkc-containers/lkc/internal/rules"
)

// needs says which /proc files the loaded rules read beyond stat and exe
// (which every rule's process name and the pid-reuse check need): the
// fewer files an exec costs, the less CPU a storm of them does.
type needs struct {
	status  bool // uids and gids: user=, uid=, @group, %u %U %g %G
	cmdline bool // cmdline=
}

var needAll = needs{status: true, cmdline: true}

// needsOf is what rs read.
func needsOf(rs []*rules.Rule) needs {
	var n needs
	for _, r := range rs {
		n.status = n.status || r.User != "" || r.UID >= 0 || r.Group != ""
		n.cmdline = n.cmdline || r.Cmdline != nil
		for _, t := range r.Targets {
			for _, tmpl := range []string{"%u", "%U", "%g", "%G"} {
				n.status = n.status || strings.Contains(t.Name, tmpl)
			}
		}
	}
	return n
}

// describe reads what the matcher knows of a process from /proc (the
// files n asks for), and its start time (clock ticks since boot), which
// tells a pid's reuse apart. buf is scratch space.
func describe(pid int, n needs, buf []byte) (*rules.Process, uint64, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := readProc(dir+"/stat", buf)
	if err != nil {
		return nil, 0, err
	}
	// The comm is in parentheses and may hold anything, ')' included.
	i := bytes.LastIndexByte(stat, ')')
	j := bytes.IndexByte(stat, '(')
	if i < 0 || j < 0 || j > i {
		return nil, 0, fmt.Errorf("%s/stat: malformed", dir)
	}
	f := bytes.Fields(stat[i+1:]) // state ppid pgrp session ... starttime is the 20th
	if len(f) < 20 {
		return nil, 0, fmt.Errorf("%s/stat: malformed", dir)
	}
	p := &rules.Process{Pid: pid, Comm: string(stat[j+1 : i])}
	p.PGID = atoi(f[2])
	p.SID = atoi(f[3])
	start, _ := strconv.ParseUint(string(f[19]), 10, 64)
	if n.status {
		status, err := readProc(dir+"/status", buf)
		if err != nil {
			return nil, 0, err
		}
		parseStatus(p, status)
	}
	p.Exe, _ = os.Readlink(dir + "/exe") // a kernel thread has none
	if n.cmdline {
		if cmd, err := readProc(dir+"/cmdline", buf); err == nil && len(cmd) > 0 {
			for _, a := range bytes.Split(bytes.TrimSuffix(cmd, []byte{0}), []byte{0}) {
				p.Cmdline = append(p.Cmdline, string(a))
			}
		}
	}
	return p, start, nil
}

// parseStatus takes the effective uid and gid and the groups.
func parseStatus(p *rules.Process, status []byte) {
	for len(status) > 0 {
		line := status
		if k := bytes.IndexByte(status, '\n'); k >= 0 {
			line, status = status[:k], status[k+1:]
		} else {
			status = nil
		}
		k, v, _ := bytes.Cut(line, []byte(":"))
		switch string(k) {
		case "Uid":
			if ids := bytes.Fields(v); len(ids) > 1 {
				p.UID = atoi(ids[1])
			}
		case "Gid":
			if ids := bytes.Fields(v); len(ids) > 1 {
				p.GIDs = append([]int{atoi(ids[1])}, p.GIDs...)
			}
		case "Groups":
			for _, s := range bytes.Fields(v) {
				p.GIDs = append(p.GIDs, atoi(s))
			}
		}
	}
}

func atoi(b []byte) int {
	n, _ := strconv.Atoi(string(b))
	return n
}

// cgroupsOf reads /proc/<pid>/cgroup: hierarchy (its controllers as
// listed there, "" for v2) to the path within it.
func cgroupsOf(pid int, buf []byte) (map[string]string, error) {
	data, err := readProc("/proc/"+strconv.Itoa(pid)+"/cgroup", buf)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, 12)
	for len(data) > 0 {
		line := data
		if k := bytes.IndexByte(data, '\n'); k >= 0 {
			line, data = data[:k], data[k+1:]
		} else {
			data = nil
		}
		if parts := bytes.SplitN(line, []byte(":"), 3); len(parts) == 3 {
			out[string(parts[1])] = string(parts[2])
		}
	}
	return out, nil
}

// children lists the children of every thread of a process
// (/proc/<pid>/task/*/children: a child belongs to the thread that
// forked it).
func children(pid int, buf []byte) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, _ := os.ReadDir(dir)
	var out []int
	for _, t := range tasks {
		data, _ := readProc(dir+"/"+t.Name()+"/children", buf)
		for _, s := range bytes.Fields(data) {
			if c, err := strconv.Atoi(string(s)); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// under reports whether cgroup path p is dir or beneath it.
func under(p, dir string) bool {
	return dir == "/" || p == dir || len(p) > len(dir) && p[:len(dir)] == dir && (dir[len(dir)-1] == '/' || p[len(dir)] == '/')
}
