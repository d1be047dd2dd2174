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
	Pid     int
	UID     int   // effective uid
	GIDs    []int // effective gid first, then the supplementary groups
	Exe     string
	Comm    string
	Cmdline []string
	PGID    int
	SID     int
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
// its base name (or the comm, for a process whose exe is unreadable).
func processIs(want string, p *Process) bool {
	return want == p.Exe || (p.Exe != "" && want == path.Base(p.Exe)) || want == p.Comm
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
	case p.Exe != "":
		return path.Base(p.Exe)
	case p.Comm != "":
		return p.Comm
	}
	return strconv.Itoa(p.Pid)
}
