package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRulesCheck(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	text := "# libcgroup's form\nroot:cp devices /usergroup/cp\n%  memory /usergroup/mem\n*  *  default/\n" +
		"# lkc's form\nuser=root exe=/usr/bin/* cmdline=\"*--batch*\" -> group=batch/%u\nleader=session comm=sshd -> ignore\n"
	if err := os.WriteFile(good, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out := e.mustLkc("rules", "check", good)
	for _, want := range []string{good + ":2: root:cp", "and cgroup /usergroup/mem in [memory]", good + ":6: user=root", good + ": 4 rules"} {
		if !strings.Contains(out, want) {
			t.Errorf("rules check output lacks %q:\n%s", want, out)
		}
	}
	// libcgroup ignores the fields after the 4th: so does lkc, with a warning.
	extra := filepath.Join(dir, "extra.conf")
	if err := os.WriteFile(extra, []byte("*anyone cpu /a ignore # c\n*  cpu  /b  ignore  later\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := e.lkc("rules", "check", extra); r.code != 0 || !strings.Contains(r.stdout, ": 2 rules") ||
		r.stderr != "lkc: rules: warning: "+extra+":2: fields after the 4th ignored, as libcgroup does: later\n" {
		t.Errorf("rules check of a line of five fields: %+v", r)
	}
	// libcgroup reads a user word that begins with % as %, and ignores a
	// % line's process name and option: so does lkc, with a warning.
	cont := filepath.Join(dir, "cont.conf")
	if err := os.WriteFile(cont, []byte("@root cpu /a\n%foo memory /b\n%:cp pids /c ignore\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := e.lkc("rules", "check", cont); r.code != 0 || !strings.Contains(r.stdout, ": 1 rules") ||
		!strings.Contains(r.stdout, "and cgroup /b in [memory] (a % line)") || !strings.Contains(r.stdout, "and cgroup /c in [pids] (a % line)") ||
		!strings.Contains(r.stderr, cont+":3: a % line takes only controllers and a destination") || !strings.Contains(r.stderr, "process name cp, option ignore") {
		t.Errorf("rules check of %% lines: %+v", r)
	}
	bad := filepath.Join(dir, "bad.conf")
	for text, want := range map[string]string{
		"# first\n%foo cpu /a\n":         `^lkc: rules: .*bad.conf:2: "%foo" continues the rule above, and there is none`,
		"root cpu /a\nroot cpu\n":        `^lkc: rules: .*bad.conf:2: want <user>`,
		"user=root -> group=../x\n":      `^lkc: rules: .*bad.conf:1: group=../x: want a group name`,
		"root cpu /a\n\nfoo=1 -> ignore": `^lkc: rules: .*bad.conf:3: "foo=1": unknown criterion foo`,
	} {
		if err := os.WriteFile(bad, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		e.failLkc(want, "rules", "check", bad)
	}
	e.failLkc(`^lkc: rules: open .*nope.conf: no such file`, "rules", "check", filepath.Join(dir, "nope.conf"))
	e.failLkc(`^lkc: rules: want a subcommand`, "rules", "frob")
}

// TestRulesCheckMissingGroup checks a file whose rule targets a group not
// defined: a warning naming it and its line, not a failure (the group may
// be created later); a defined parent of a templated group is not one.
func TestRulesCheckMissingGroup(t *testing.T) {
	g := newGroupEnv(t)
	g.mustLkc("group", "create", "batch")
	file := filepath.Join(t.TempDir(), "rules.conf")
	if err := os.WriteFile(file, []byte("user=root -> group=batch/%u\nuser=root -> group=nosuch\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := g.lkc("rules", "check", file)
	if r.code != 0 || !strings.Contains(r.stderr, "lkc: rules: warning: "+file+":2: no resource group nosuch") ||
		strings.Contains(r.stderr, "group batch") {
		t.Errorf("rules check of a rule whose group is missing: %+v", r)
	}
}
