package groups

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lkc-containers/lkc/internal/config"
)

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"a", "web", "a/b", "build_2/x-y", "A9"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("CheckName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/a", "a/", "a//b", "..", "a/../b", ".hidden", "a.b", "-x", "tasks", "a/release_agent",
		"a b", "a/b/c/d/e/f/g/h/i", strings.Repeat("a", 65)} {
		if err := CheckName(bad); err == nil {
			t.Errorf("CheckName(%q) accepted", bad)
		}
	}
}

func TestDefinitions(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	limit := int64(1 << 20)
	for _, g := range []*Group{{Name: "b"}, {Name: "a", Resources: config.Resources{MemoryLimit: &limit}}, {Name: "a/x"}} {
		if err := s.save(g); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.List(func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range all {
		names = append(names, g.Name)
	}
	if !reflect.DeepEqual(names, []string{"a", "a/x", "b"}) {
		t.Errorf("List = %v, want parents before children", names)
	}
	if *all[0].Resources.MemoryLimit != limit {
		t.Errorf("a's memory limit not kept: %+v", all[0].Resources)
	}
	if kids, _ := s.children("a"); !reflect.DeepEqual(kids, []string{"a/x"}) {
		t.Errorf("children(a) = %v", kids)
	}
	if err := s.remove("a/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("a/x"); !errors.Is(err, ErrNotExist) {
		t.Errorf("Get after remove = %v", err)
	}
	if kids, _ := s.children("a"); len(kids) != 0 {
		t.Errorf("children(a) after remove = %v", kids)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "a")); err == nil {
		t.Errorf("the directory of a's children is left after its last child's remove")
	}
	if _, err := s.Get("a"); err != nil {
		t.Errorf("a after its child's remove: %v", err)
	}
}

func TestListWithoutDirectory(t *testing.T) {
	s := &Store{Dir: t.TempDir() + "/none"}
	if all, err := s.List(func(err error) { t.Error(err) }); err != nil || len(all) != 0 {
		t.Errorf("List of a missing directory = %v, %v", all, err)
	}
}

// TestListSkipsBadDefinition: a definition that cannot be read is told
// to warn, and the others are listed.
func TestListSkipsBadDefinition(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	if err := s.save(&Group{Name: "good"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "bad.json"), []byte("{junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	var warned []error
	all, err := s.List(func(err error) { warned = append(warned, err) })
	if err != nil || len(all) != 1 || all[0].Name != "good" {
		t.Errorf("List = %v, %v; want group good", all, err)
	}
	if len(warned) != 1 || !strings.HasPrefix(warned[0].Error(), "group bad: ") {
		t.Errorf("warnings %v, want one naming group bad", warned)
	}
}
