package rules

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// parseLKC reads one rule in lkc's form: criteria (all must hold), "->",
// then one target:
//
//	user=alice exe=/usr/bin/make -> group=build
//	@developers cmdline="*--batch*" -> group=batch/%u
//	exe=/usr/sbin/nginx -> container=web1
//	leader=session comm=sshd -> ignore
func parseLKC(words []string) (*Rule, error) {
	r := &Rule{UID: -1}
	i := 0
	for ; words[i] != "->"; i++ {
		if err := r.criterion(words[i]); err != nil {
			return nil, err
		}
	}
	rest := words[i+1:]
	if len(rest) != 1 {
		return nil, errors.New("want one target after ->: group=NAME, container=ID or ignore")
	}
	return r, r.target(rest[0])
}

func (r *Rule) criterion(w string) error {
	if g, ok := strings.CutPrefix(w, "@"); ok {
		if g == "" || r.Group != "" {
			return fmt.Errorf("%q: want one @group", w)
		}
		r.Group = g
		return nil
	}
	key, v, ok := strings.Cut(w, "=")
	if !ok || v == "" {
		return fmt.Errorf("%q: want key=value (user, uid, exe, comm, cmdline, leader) or @group", w)
	}
	var err error
	switch key {
	case "user":
		if v != "*" {
			r.User = v
		}
	case "uid":
		if r.UID, err = strconv.Atoi(v); err != nil || r.UID < 0 {
			return fmt.Errorf("uid=%s: want a number", v)
		}
	case "exe":
		if _, err := path.Match(v, ""); err != nil || !strings.HasPrefix(v, "/") {
			return fmt.Errorf("exe=%s: want an absolute path or glob", v)
		}
		r.Exe = v
	case "comm":
		if len(v) > 15 {
			return fmt.Errorf("comm=%s: the kernel keeps 15 bytes of a comm", v)
		}
		r.Comm = v
	case "cmdline":
		r.Cmdline = compilePattern(v)
	case "leader":
		if v != "session" && v != "pgrp" {
			return fmt.Errorf("leader=%s: use session or pgrp", v)
		}
		r.Leader = v
	default:
		return fmt.Errorf("%q: unknown criterion %s (user, uid, exe, comm, cmdline, leader, @group)", w, key)
	}
	return nil
}

func (r *Rule) target(w string) error {
	if w == "ignore" {
		r.Ignore = true
		return nil
	}
	kind, name, _ := strings.Cut(w, "=")
	switch kind {
	case "group":
		if err := checkTemplate(name); err != nil {
			return err
		}
		if !groupName().MatchString(expandSample(name)) {
			return fmt.Errorf("group=%s: want a group name (components of letters, digits, _ and -, joined by /)", name)
		}
	case "container":
		if name == "" || strings.ContainsAny(name, "/%") {
			return fmt.Errorf("container=%s: want a container id", name)
		}
	default:
		return fmt.Errorf("target %q: want group=NAME, container=ID or ignore", w)
	}
	r.Targets = []Target{{Kind: kind, Name: name}}
	return nil
}

// groupName is the shape of a resource group's name (internal/groups
// checks it fully when the engine makes the group).
var groupName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]*(/[A-Za-z0-9_][A-Za-z0-9_-]*)*$`)
})

// expandSample fills a group name's templates with a valid stand-in, so
// the rest of the name can be checked before any process exists.
func expandSample(name string) string {
	return regexp.MustCompile(`%[uUgGpP]`).ReplaceAllString(name, "x")
}

// Pattern is a glob over a command line, where '*' and '?' match any
// character, '/' and ' ' too.
type Pattern struct {
	Glob string
	re   *regexp.Regexp
}

func compilePattern(glob string) *Pattern {
	var b strings.Builder
	b.WriteString("^")
	for _, c := range glob {
		switch c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return &Pattern{Glob: glob, re: regexp.MustCompile(b.String())}
}

// Match reports whether s matches the pattern.
func (p *Pattern) Match(s string) bool { return p.re.MatchString(s) }
