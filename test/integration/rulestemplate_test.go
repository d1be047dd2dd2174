package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRulesRemovesIdleTemplateGroups gives the engine a templated rule
// (group=t-%p: a group per program name) and rules.template-idle = 1s.
// Two programs land in their groups; once one of them ends, its group
// goes (definition and cgroups) after staying empty, while the other's,
// which still holds its process, and a group made by `lkc group create`,
// empty all along, stay. The program started again gets its group again.
func TestRulesRemovesIdleTemplateGroups(t *testing.T) {
	r := newRulesEnv(t, "")
	conf := filepath.Join(r.tmp, "lkc.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString("rules.template-idle = 1s\n")
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"lkc-tmpl-a", "lkc-tmpl-b"} {
		copyExe(t, "/bin/sleep", filepath.Join(r.tmp, name))
	}
	r.writeRules("exe=" + r.tmp + "/lkc-tmpl-* -> group=t-%p\n")
	r.mustLkc("group", "create", "kept")
	r.start()
	a := r.inScope(filepath.Join(r.tmp, "lkc-tmpl-a"), "600")
	b := r.inScope(filepath.Join(r.tmp, "lkc-tmpl-b"), "600")
	r.waitInGroup(a.Process.Pid, "t-lkc-tmpl-a")
	r.waitInGroup(b.Process.Pid, "t-lkc-tmpl-b")
	syscall.Kill(a.Process.Pid, syscall.SIGKILL)
	a.Wait()
	def := filepath.Join(r.tmp, "groups", "t-lkc-tmpl-a.json")
	for end := time.Now().Add(settle); r.groupExists(def, "t-lkc-tmpl-a"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the emptied template group t-lkc-tmpl-a is still there after %v (daemon log:\n%s)", settle, r.log())
		}
	}
	// The engine logs the removal once it is done: the line may follow the
	// group's disappearance by a moment.
	removed := func() bool {
		return strings.Contains(r.log(), "rules: removed group t-lkc-tmpl-a (made from group=t-%p)")
	}
	for end := time.Now().Add(settle); !removed(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the daemon's log does not say it removed t-lkc-tmpl-a:\n%s", r.log())
		}
	}
	if !r.groupExists(filepath.Join(r.tmp, "groups", "t-lkc-tmpl-b.json"), "t-lkc-tmpl-b") {
		t.Error("the template group t-lkc-tmpl-b, which holds a process, was removed")
	}
	if !r.groupExists(filepath.Join(r.tmp, "groups", "kept.json"), "kept") {
		t.Error("the group made by lkc group create was removed")
	}
	again := r.inScope(filepath.Join(r.tmp, "lkc-tmpl-a"), "600")
	r.waitInGroup(again.Process.Pid, "t-lkc-tmpl-a")
}

// groupExists reports whether group name still has its definition def
// or a cgroup in any hierarchy.
func (r *rulesEnv) groupExists(def, name string) bool {
	if _, err := os.Stat(def); err == nil {
		return true
	}
	for _, d := range r.dirsOf(filepath.Join(r.parent, name)) {
		if _, err := os.Stat(d); err == nil {
			return true
		}
	}
	return false
}
