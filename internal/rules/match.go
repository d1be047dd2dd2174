package rules

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Process is what the matcher knows of a process (the engine reads it
// from /proc/<pid>/exe, status, stat, comm and cmdline).
type Process struct {
	Pid  int
	UID  int   // effective uid
	GIDs []int // effective gid first, then the supplementary groups
	Exe  string
	// Script is what libcgroup names a process whose comm is not its
	// executable's base name (ScriptArg): the script an interpreter runs,
	// or the symlink a program was started by. The caller fills it only
	// when a cgrules rule names a process or a target holds %p.
	Script  string
	Comm    string
	Cmdline []string
	PGID    int
	SID     int
	// Cgroups is the process's cgroup path in each hierarchy, keyed as
	// /proc/<pid>/cgroup names the hierarchy (its v1 controllers joined by
	// commas, "" for v2). Only a cgrules ignore rule reads it (NeedsCgroups).
	Cgroups map[string]string
}

// Users resolves user and group names (/etc/passwd and /etc/group, or a
// fake in tests). A name it does not know matches nobody.
type Users interface {
	UID(name string) (int, bool)
	GID(group string) (int, bool)
	// Members are the user names a group lists.
	Members(group string) []string
	UserName(uid int) (string, bool)
	GroupName(gid int) (string, bool)
}

// Match is a rule that matched a process, with its targets expanded for
// that process and why it matched.
type Match struct {
	Rule    *Rule
	Targets []Target
	Why     []string
}

// Find returns the first rule that matches p (first match wins, as in
// cgrules.conf), or nil.
func Find(rs []*Rule, p *Process, u Users) *Match {
	for _, r := range rs {
		if why, ok := r.Matches(p, u); ok {
			return &Match{Rule: r, Targets: r.expand(p, u), Why: why}
		}
	}
	return nil
}

// Matches reports whether every criterion of r holds for p and, if so,
// each criterion in words (for `lkc rules explain`).
func (r *Rule) Matches(p *Process, u Users) ([]string, bool) {
	var why []string
	check := func(ok bool, format string, args ...any) bool {
		if ok {
			why = append(why, fmt.Sprintf(format, args...))
		}
		return ok
	}
	if r.User != "" {
		uid, known := u.UID(r.User)
		if !check(known && uid == p.UID, "uid %d is user %s", p.UID, r.User) {
			return nil, false
		}
	}
	if r.UID >= 0 && !check(r.UID == p.UID, "uid %d", p.UID) {
		return nil, false
	}
	if r.Group != "" && !check(inGroup(r.Group, p, u), "in group %s", r.Group) {
		return nil, false
	}
	if r.Process != "" && !check(processIs(r.Process, p), "process %s", r.Process) {
		return nil, false
	}
	if r.NeedsCgroups() {
		dest := Expand(r.Targets[0].Name, p, u)
		if !check(r.inDestination(dest, p), "already in %s", dest) {
			return nil, false
		}
	}
	if r.Exe != "" {
		ok, _ := path.Match(r.Exe, p.Exe)
		if !check(ok, "exe %s matches %s", p.Exe, r.Exe) {
			return nil, false
		}
	}
	if r.Comm != "" && !check(r.Comm == p.Comm, "comm %s", p.Comm) {
		return nil, false
	}
	if r.Cmdline != nil {
		line := strings.Join(p.Cmdline, " ")
		if !check(r.Cmdline.Match(line), "cmdline %q matches %q", line, r.Cmdline.Glob) {
			return nil, false
		}
	}
	switch r.Leader {
	case "session":
		if !check(p.SID == p.Pid, "leads session %d", p.SID) {
			return nil, false
		}
	case "pgrp":
		if !check(p.PGID == p.Pid, "leads process group %d", p.PGID) {
			return nil, false
		}
	}
	if len(why) == 0 {
		why = []string{"matches every process"}
	}
	return why, true
}

// inGroup is libcgroup's test: one of the process's gids is the group's,
// or its user is listed as a member.
func inGroup(group string, p *Process, u Users) bool {
	if gid, ok := u.GID(group); ok && slices.Contains(p.GIDs, gid) {
		return true
	}
	name, ok := u.UserName(p.UID)
	return ok && slices.Contains(u.Members(group), name)
}

// processIs is cgrules' process test: the full path of the executable or
// its base name (or the comm, for a process whose exe is unreadable). A
// name ending in '*' matches every process name it begins, as libcgroup's
// does: the full path's (or, without an executable, the comm's).
func processIs(want string, p *Process) bool {
	name := p.Exe
	if p.Script != "" {
		name = p.Script
	}
	if prefix, ok := strings.CutSuffix(want, "*"); ok {
		if name == "" {
			name = p.Comm
		}
		return strings.HasPrefix(name, prefix)
	}
	return want == name || (name != "" && want == path.Base(name)) || want == p.Comm
}

// commLen is the most bytes of a name the kernel keeps as the comm.
const commLen = 15

// ScriptArg is the argument that names a process whose comm is not its
// executable's base name, as libcgroup finds it: a script, whose
// interpreter is the executable and whose own name the comm is, or a
// program started through a symlink. It is the first argument whose base
// name the comm begins (the comm holds 15 bytes at most); "" when the
// comm is the executable's name or no argument is. The caller makes a
// relative one absolute from the process's directory, and keeps it only
// if it exists there, as libcgroup's realpath does (Process.Script).
func ScriptArg(comm, exe string, cmdline []string) string {
	if exe == "" || comm == CommOf(path.Base(exe)) {
		return ""
	}
	for _, a := range cmdline {
		if a != "" && comm == CommOf(path.Base(a)) {
			return a
		}
	}
	return ""
}

// CommOf is the comm the kernel keeps of a program named name: its first
// 15 bytes.
func CommOf(name string) string { return name[:min(len(name), commLen)] }

// NeedsCgroups says whether matching r reads the process's cgroups: a
// cgrules rule with the ignore option holds, as libcgroup's does, only
// for a process already in its destination (or beneath it) in one of its
// controllers' hierarchies; any other process goes on to the next rule.
// (lkc's "-> ignore" leaves every matching process where it is.)
func (r *Rule) NeedsCgroups() bool {
	return r.Ignore && len(r.Targets) > 0 && r.Targets[0].Kind == "cgroup"
}

// inDestination says whether p is in dest or beneath it in a hierarchy
// of r's controllers (v2's serves them all).
func (r *Rule) inDestination(dest string, p *Process) bool {
	ctrls := r.Targets[0].Controllers
	dest = "/" + strings.Trim(dest, "/")
	for h, cg := range p.Cgroups {
		if h != "" && !slices.Contains(ctrls, "*") && !slices.ContainsFunc(strings.Split(h, ","), func(c string) bool { return slices.Contains(ctrls, c) }) {
			continue
		}
		if dest == "/" || cg == dest || strings.HasPrefix(cg, dest+"/") {
			return true
		}
	}
	return false
}

func (r *Rule) expand(p *Process, u Users) []Target {
	out := make([]Target, len(r.Targets))
	for i, t := range r.Targets {
		t.Name = Expand(t.Name, p, u)
		out[i] = t
	}
	return out
}

// Expand fills a destination's templates for p: %u user name (the uid
// when it has none), %U uid, %g group name (the gid when it has none), %G
// gid, %p process name (the pid when it has none), %P pid; \ escapes.
func Expand(s string, p *Process, u Users) string {
	var b strings.Builder
	gid := -1
	if len(p.GIDs) > 0 {
		gid = p.GIDs[0]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			i++
			b.WriteByte(s[i])
			continue
		}
		if c != '%' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 'u':
			b.WriteString(nameOr(u.UserName, p.UID))
		case 'U':
			b.WriteString(strconv.Itoa(p.UID))
		case 'g':
			b.WriteString(nameOr(u.GroupName, gid))
		case 'G':
			b.WriteString(strconv.Itoa(gid))
		case 'p':
			b.WriteString(procName(p))
		case 'P':
			b.WriteString(strconv.Itoa(p.Pid))
		default:
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func nameOr(lookup func(int) (string, bool), id int) string {
	if n, ok := lookup(id); ok {
		return n
	}
	return strconv.Itoa(id)
}

func procName(p *Process) string {
	switch {
	case p.Script != "":
		return path.Base(p.Script)
	case p.Exe != "":
		return path.Base(p.Exe)
	case p.Comm != "":
		return p.Comm
	}
	return strconv.Itoa(p.Pid)
}
