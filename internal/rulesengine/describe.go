package rulesengine

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lkc-containers/lkc/internal/rules"
	"github.com/lkc-containers/lkc/internal/state"
)

// needs says which /proc files the loaded rules read beyond stat and exe
// (which every rule's process name and the pid-reuse check need): the
// fewer files an exec costs, the less CPU a storm of them does.
type needs struct {
	status  bool // uids and gids: user=, uid=, @group, %u %U %g %G
	cmdline bool // cmdline=
	cgroups bool // a cgrules ignore rule (rules.Rule.NeedsCgroups)
	script  bool // a cgrules process name or %p: rules.Process.Script
}

var needAll = needs{status: true, cmdline: true, cgroups: true, script: true}

// needsOf is what rs read.
func needsOf(rs []*rules.Rule) needs {
	var n needs
	for _, r := range rs {
		n.status = n.status || r.User != "" || r.UID >= 0 || r.Group != ""
		n.cmdline = n.cmdline || r.Cmdline != nil
		n.cgroups = n.cgroups || r.NeedsCgroups()
		n.script = n.script || r.Process != ""
		for _, t := range r.Targets {
			n.script = n.script || strings.Contains(t.Name, "%p")
			for _, tmpl := range []string{"%u", "%U", "%g", "%G"} {
				n.status = n.status || strings.Contains(t.Name, tmpl)
			}
		}
	}
	return n
}

// describe reads what the matcher knows of a process from /proc (the
// files n asks for), and its start time (clock ticks since boot), which
// tells a pid's reuse apart.
func describe(r *procReader, pid int, n needs) (*rules.Process, uint64, error) {
	stat, err := r.read(pid, "stat")
	if err != nil {
		return nil, 0, err
	}
	// The comm is in parentheses and may hold anything, ')' included.
	i := bytes.LastIndexByte(stat, ')')
	j := bytes.IndexByte(stat, '(')
	if i < 0 || j < 0 || j > i {
		return nil, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	p := &rules.Process{Pid: pid, Comm: string(stat[j+1 : i])}
	// state ppid pgrp session ... starttime is the 20th field after comm.
	var f [20][]byte
	if fields(stat[i+1:], f[:]) < len(f) {
		return nil, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	p.PGID = atoi(f[2])
	p.SID = atoi(f[3])
	start := uint64(atoi(f[19]))
	if n.status {
		status, err := r.read(pid, "status")
		if err != nil {
			return nil, 0, err
		}
		parseStatus(p, status)
	}
	if exe, err := r.readlink(pid, "exe"); err == nil { // a kernel thread has none
		p.Exe = string(exe)
	}
	if n.cgroups {
		set, err := cgroupsOf(r, pid, nil)
		if err != nil {
			return nil, 0, err
		}
		p.Cgroups = set.toMap()
	}
	// A script's comm is its own name, not its interpreter's: only then
	// does the script name need the command line.
	script := n.script && p.Exe != "" && p.Comm != rules.CommOf(filepath.Base(p.Exe))
	if n.cmdline || script {
		if cmd, err := r.read(pid, "cmdline"); err == nil && len(cmd) > 0 {
			for _, a := range bytes.Split(bytes.TrimSuffix(cmd, []byte{0}), []byte{0}) {
				p.Cmdline = append(p.Cmdline, string(a))
			}
		}
	}
	if script {
		p.Script = scriptOf(r, pid, rules.ScriptArg(p.Comm, p.Exe, p.Cmdline))
	}
	return p, start, nil
}

// scriptOf makes a script's argument absolute, as libcgroup does: a
// relative one from the process's directory, kept only when it resolves
// there (realpath), else the executable names the process.
func scriptOf(r *procReader, pid int, arg string) string {
	if arg == "" || filepath.IsAbs(arg) {
		return arg
	}
	cwd, err := r.readlink(pid, "cwd")
	if err != nil {
		return ""
	}
	real, err := filepath.EvalSymlinks(filepath.Join(string(cwd), arg))
	if err != nil {
		return ""
	}
	return real
}

// fields puts the first len(out) space-separated fields of b in out and
// says how many there were (bytes.Fields without its allocations).
func fields(b []byte, out [][]byte) int {
	n := 0
	for n < len(out) {
		for len(b) > 0 && (b[0] == ' ' || b[0] == '\n') {
			b = b[1:]
		}
		if len(b) == 0 {
			break
		}
		k := bytes.IndexAny(b, " \n")
		if k < 0 {
			k = len(b)
		}
		out[n], b = b[:k], b[k:]
		n++
	}
	return n
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

// atoi is the decimal number b starts with (0 when none): /proc's
// numbers, without strconv's string.
func atoi(b []byte) int {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// cgroupSet is /proc/<pid>/cgroup: each hierarchy (its controllers as
// listed there, "" for v2) with the path within it. Its strings are views
// of the buffer it was read into: valid until the next read, copied by
// whatever keeps one.
type cgroupSet []cgroupOf

type cgroupOf struct{ h, p string }

// toMap copies s into the matcher's form (rules.Process.Cgroups).
func (s cgroupSet) toMap() map[string]string {
	m := make(map[string]string, len(s))
	for _, c := range s {
		m[strings.Clone(c.h)] = strings.Clone(c.p)
	}
	return m
}

// get is the path in hierarchy h.
func (s cgroupSet) get(h string) (string, bool) {
	for _, c := range s {
		if c.h == h {
			return c.p, true
		}
	}
	return "", false
}

// cgroupsOf reads /proc/<pid>/cgroup with r into set (reused), from a
// live thread when the leader has exited while other threads run on: a
// v1 hierarchy shows an exited task in its root, where the scope check
// would take the process to be and a refused move would send it back.
// Only a process of more than one thread at the root of a v1 hierarchy
// has its threads looked at.
func cgroupsOf(r *procReader, pid int, set cgroupSet) (cgroupSet, error) {
	data, err := r.read(pid, "cgroup")
	if err != nil {
		return nil, err
	}
	set = parseCgroups(data, set[:0])
	if !set.v1Root() || r.threads(pid) < 2 {
		return set, nil
	}
	task := state.LiveTask(pid)
	if !strings.Contains(task, "/task/") { // the leader runs
		return set, nil
	}
	if data, err = r.readPath(append([]byte(task+"/cgroup"), 0)); err != nil {
		return nil, err
	}
	return parseCgroups(data, set[:0]), nil
}

// v1Root says s has a v1 hierarchy's root, as an exited task shows.
func (s cgroupSet) v1Root() bool {
	for _, c := range s {
		if c.h != "" && c.p == "/" {
			return true
		}
	}
	return false
}

// parseCgroups appends the lines of a cgroup file (data) to set.
func parseCgroups(data []byte, set cgroupSet) cgroupSet {
	for len(data) > 0 {
		line := data
		if k := bytes.IndexByte(data, '\n'); k >= 0 {
			line, data = data[:k], data[k+1:]
		} else {
			data = nil
		}
		_, rest, ok := bytes.Cut(line, []byte(":"))
		h, p, ok2 := bytes.Cut(rest, []byte(":"))
		if ok && ok2 {
			set = append(set, cgroupOf{view(h), view(p)})
		}
	}
	return set
}

// children appends to out the children of every thread of process pid
// (/proc/<pid>/task/*/children: a child belongs to the thread that forked
// it); a process of one thread has only its own list to read.
func children(r *procReader, pid int, out []int) []int {
	switch n := r.threads(pid); {
	case n == 0:
		return out
	case n == 1:
		return appendPids(r, pid, pid, out)
	}
	tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			out = appendPids(r, pid, tid, out)
		}
	}
	return out
}

// appendPids appends the pids in /proc/<pid>/task/<tid>/children.
func appendPids(r *procReader, pid, tid int, out []int) []int {
	data, _ := r.readPath(r.atTask(pid, tid, "children"))
	for len(data) > 0 {
		for len(data) > 0 && (data[0] < '0' || data[0] > '9') {
			data = data[1:]
		}
		k := 0
		for k < len(data) && data[k] >= '0' && data[k] <= '9' {
			k++
		}
		if k > 0 {
			out = append(out, atoi(data[:k]))
		}
		data = data[k:]
	}
	return out
}

// under reports whether cgroup path p is dir or beneath it.
func under(p, dir string) bool {
	return dir == "/" || p == dir || len(p) > len(dir) && p[:len(dir)] == dir && (dir[len(dir)-1] == '/' || p[len(dir)] == '/')
}
