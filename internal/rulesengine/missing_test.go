package rulesengine

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lkc-containers/lkc/internal/groups"
	"github.com/lkc-containers/lkc/internal/rules"
)

func TestMissingGroups(t *testing.T) {
	s := &groups.Store{Dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(s.Dir, "ok.json"), []byte(`{"name": "ok"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	text := strings.Join([]string{
		"user=root -> group=java",      // 1: missing
		"user=root -> group=java/%u",   // 2: its parent java missing
		"user=root -> group=%u",        // 3: made per user
		"user=root -> group=%u/build",  // 4: parent is per process
		"user=root -> container=web",   // 5: not a group
		"* cpu users/%u",               // 6: a cgroup
		"user=root -> group=build/x/y", // 7: missing
		"user=root -> group=ok",        // 8: defined
		"user=root -> group=ok/%p",     // 9: in a defined parent
	}, "\n")
	rs, err := rules.Parse(strings.NewReader(text), "r.conf")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range MissingGroups(rs, s) {
		got = append(got, w[:strings.Index(w, " (")])
	}
	want := []string{"r.conf:1: no resource group java", "r.conf:2: no resource group java", "r.conf:7: no resource group build/x/y"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MissingGroups = %q, want %q", got, want)
	}
}
