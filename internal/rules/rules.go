// Package rules is the syntax of the rules that put host processes into
// resource groups and containers' cgroups, and the matcher that finds the
// rule for a process: lkc's own form and libcgroup's cgrules.conf, so
// existing setups move over. It is a leaf: it parses text and matches a
// process description the caller read from /proc; it reads no kernel
// state and resolves user and group names only through the Users it is
// given. The rules engine (which follows process events) and `lkc rules
// check` both use it. docs/groups.md has the syntax.
package rules

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Rule is one rule: criteria, all of which must hold, and what to do
// with a matching process.
type Rule struct {
	File string // where it was read, for explain and errors
	Line int
	Text string // the line as written (without the comment)

	User  string // user name, "" for any (cgrules "*")
	UID   int    // uid= criterion, -1 for none
	Group string // @group: the process is in the group (its gids, or the user is a member)

	// Process is cgrules' process name: the executable's full path or its
	// base name, or the comm.
	Process string
	Exe     string   // glob over the executable's path ('*' stays within a component)
	Comm    string   // exact comm
	Cmdline *Pattern // glob over the arguments joined by spaces ('*' matches anything)
	Leader  string   // "session" or "pgrp": the process leads its session or group

	Targets []Target // more than one for cgrules' % continuation lines
	Ignore  bool     // a match leaves the process where it is

	Extra []string // a cgrules line's fields after the 4th, ignored (as libcgroup does)

	contIgnored []string // warnings of what its % lines gave that is ignored
}

// Target is where a matching process goes.
type Target struct {
	// Kind is "group" (a resource group), "container" (a container's
	// cgroup) or "cgroup" (a cgrules destination: a path in each
	// hierarchy of Controllers).
	Kind string
	// Name may hold templates (%u %U %g %G %p %P), expanded at match.
	Name        string
	Controllers []string // cgrules only; "*" is every controller
}

// Error is a syntax error at one line.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Parse reads a rules file. Each line is one rule in lkc's form when it
// has a "->" word, else a cgrules.conf line; '#' starts a comment, as in
// cgrules.conf. The first error stops it.
func Parse(r io.Reader, file string) ([]*Rule, error) {
	var out []*Rule
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		text, _, _ := strings.Cut(sc.Text(), "#")
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		words, err := split(text)
		if err != nil {
			return nil, &Error{file, n, err.Error()}
		}
		var rule *Rule
		cont := false
		if hasArrow(words) {
			rule, err = parseLKC(words)
		} else {
			rule, cont, err = parseCgrules(words)
		}
		if err == nil && cont {
			err = continueRule(out, rule, file, n)
		}
		if err != nil {
			return nil, &Error{file, n, err.Error()}
		}
		if cont {
			continue
		}
		rule.File, rule.Line, rule.Text = file, n, text
		out = append(out, rule)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	return out, nil
}

func hasArrow(words []string) bool {
	for _, w := range words {
		if w == "->" {
			return true
		}
	}
	return false
}

// split cuts a line into words at blanks; a double-quoted part keeps its
// blanks (cmdline="a b"), with \" and \\ inside.
func split(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\'):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			quoted, in = !quoted, true
		case !quoted && (c == ' ' || c == '\t'):
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote")
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// checkTemplate checks the % sequences of a destination.
func checkTemplate(s string) error {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '%':
			if i+1 >= len(s) || !strings.ContainsRune("uUgGpP", rune(s[i+1])) {
				return fmt.Errorf("destination %q: %% must be followed by u, U, g, G, p or P (\\%% for a %%)", s)
			}
			i++
		}
	}
	return nil
}
