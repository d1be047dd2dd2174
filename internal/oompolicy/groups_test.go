package oompolicy

import (
	"strings"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/groups"
	"github.com/lkc-containers/lkc/internal/hostconf"
)

// TestGroupSettings: a group's own fallback and deadline win over the
// host defaults, which fill in what the group leaves empty; a bad value in
// a definition is an error naming its field; changing either re-arms.
func TestGroupSettings(t *testing.T) {
	c := hostconf.Default()
	g := &groups.Group{Name: "batch", OOMPolicy: "notify:true", OOMFallback: "kill-newest", OOMDeadline: "300ms"}
	s, err := groupSettings(c, g)
	if err != nil || s.Policy.Kind != Notify || s.Fallback.Kind != KillNewest || s.Deadline != 300*time.Millisecond {
		t.Fatalf("group's own: %+v, %v; want notify, kill-newest, 300ms", s, err)
	}
	plain := &groups.Group{Name: "batch", OOMPolicy: "kill-largest"}
	if s, err := groupSettings(c, plain); err != nil || s.Fallback.Kind != KillLargest || s.Deadline != c.OOMDeadline {
		t.Fatalf("host defaults: %+v, %v", s, err)
	}
	if groupKey(g) == groupKey(plain) || groupKey(g) == groupKey(&groups.Group{OOMPolicy: g.OOMPolicy, OOMFallback: g.OOMFallback}) {
		t.Errorf("groupKey does not tell the fallback or the deadline apart")
	}
	for field, bad := range map[string]*groups.Group{
		"oomPolicy":   {OOMPolicy: "checkpoint"},
		"oomFallback": {OOMPolicy: "kill-largest", OOMFallback: "grow:1G"},
		"oomDeadline": {OOMPolicy: "kill-largest", OOMDeadline: "0s"},
	} {
		if _, err := groupSettings(c, bad); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%+v: %v, want an error naming %s", bad, err, field)
		}
	}
}
