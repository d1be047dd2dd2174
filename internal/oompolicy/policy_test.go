package oompolicy

import (
	"strings"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/hostconf"
)

func TestParse(t *testing.T) {
	good := map[string]Policy{
		"kernel":            {Kind: Kernel},
		"kill-largest":      {Kind: KillLargest},
		"kill-newest":       {Kind: KillNewest},
		"grow:512M":         {Kind: Grow, Ceiling: 512 << 20},
		"grow:1GiB":         {Kind: Grow, Ceiling: 1 << 30},
		"grow:4096":         {Kind: Grow, Ceiling: 4096},
		"checkpoint":        {Kind: Checkpoint},
		"checkpoint:/x/y":   {Kind: Checkpoint, Dir: "/x/y"},
		"notify:echo a:b c": {Kind: Notify, Command: "echo a:b c"},
	}
	for v, want := range good {
		got, err := Parse(v)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", v, got, err, want)
		}
	}
	for _, v := range []string{"", "kill", "kernel:1", "grow", "grow:", "grow:0", "grow:12Q", "grow:-1M", "grow:512I", "grow:512iB", "grow:1GBB", "checkpoint:rel", "notify:", "notify: ", "Kernel"} {
		if _, err := Parse(v); err == nil {
			t.Errorf("Parse(%q): want an error", v)
		}
	}
}

func TestResolve(t *testing.T) {
	c := hostconf.Default()
	s, err := Resolve(c, nil)
	if err != nil || s.Policy.Kind != Kernel || s.Fallback.Kind != KillLargest || s.Deadline != 5*time.Second {
		t.Fatalf("defaults: %+v, %v", s, err)
	}
	s, err = Resolve(c, map[string]string{hostconf.AnnotationOOMPolicy: "checkpoint", AnnotationFallback: "kernel", AnnotationDeadline: "250ms"})
	if err != nil || s.Policy.Dir != c.OOMCheckpointTo || s.Fallback.Kind != Kernel || s.Deadline != 250*time.Millisecond {
		t.Fatalf("annotations: %+v, %v", s, err)
	}
	bad := map[string]string{
		hostconf.AnnotationOOMPolicy: "grow:lots",
		AnnotationFallback:           "notify:true",
		AnnotationDeadline:           "-1s",
	}
	for k, v := range bad {
		_, err := Resolve(c, map[string]string{k: v})
		if err == nil || !strings.Contains(err.Error(), "annotation "+k) {
			t.Errorf("%s=%s: %v, want an error naming the annotation", k, v, err)
		}
	}
}

func TestReserve(t *testing.T) {
	if n, err := Reserve("5%", 1000); err != nil || n != 50 {
		t.Errorf("5%% of 1000: %d, %v", n, err)
	}
	if n, err := Reserve("64M", 1000); err != nil || n != 64<<20 {
		t.Errorf("64M: %d, %v", n, err)
	}
	for _, v := range []string{"150%", "NaN%", "nan%", "-0.5%", "lots"} {
		if n, err := Reserve(v, 1000); err == nil {
			t.Errorf("%s: %d, want an error", v, n)
		}
	}
}

// TestResolveNamesConfKey: a bad host default fails in one line naming
// its lkc.conf key, and a grow policy checks oom.grow-reserve, which it
// will need, before anything is made rather than at the first OOM.
func TestResolveNamesConfKey(t *testing.T) {
	for key, set := range map[string]func(*hostconf.Conf){
		"oom.default":      func(c *hostconf.Conf) { c.OOMDefault = "grow:lots" },
		"oom.fallback":     func(c *hostconf.Conf) { c.OOMFallback = "notify:true" },
		"oom.grow-reserve": func(c *hostconf.Conf) { c.OOMDefault, c.OOMGrowReserve = "grow:1G", "NaN%" },
	} {
		c := hostconf.Default()
		set(c)
		_, err := Resolve(c, nil)
		if err == nil || !strings.HasPrefix(err.Error(), "lkc.conf "+key+": ") {
			t.Errorf("%s: %v, want an error naming it", key, err)
		}
	}
	c := hostconf.Default()
	c.OOMGrowReserve = "lots"
	if _, err := Resolve(c, map[string]string{hostconf.AnnotationOOMPolicy: "kill-largest"}); err != nil {
		t.Errorf("a bad oom.grow-reserve fails a policy that never grows: %v", err)
	}
}

func TestVictimChoice(t *testing.T) {
	init := &task{pid: 1, rss: 900, start: 1, init: true}
	big := &task{pid: 2, rss: 500, start: 2}
	young := &task{pid: 3, rss: 10, start: 9}
	pick := func(k Kind, ts ...*task) int {
		var best *task
		for _, t := range ts {
			if best == nil || t.better(best, k) {
				best = t
			}
		}
		return best.pid
	}
	if got := pick(KillLargest, init, big, young); got != 2 {
		t.Errorf("kill-largest chose %d, want 2 (init is larger but spared)", got)
	}
	if got := pick(KillNewest, init, big, young); got != 3 {
		t.Errorf("kill-newest chose %d, want 3", got)
	}
	shell, child := &task{pid: 40, rss: 10, start: 9}, &task{pid: 41, rss: 10, start: 9}
	if got := pick(KillNewest, child, shell); got != 41 {
		t.Errorf("kill-newest among two started in one tick chose %d, want the higher pid 41", got)
	}
	if got := pick(KillLargest, init); got != 1 {
		t.Errorf("init alone: chose %d, want init", got)
	}
}

func TestCheckGroupPolicy(t *testing.T) {
	for _, v := range []string{"kernel", "kill-largest", "kill-newest", "grow:1G", "notify:true"} {
		if err := CheckGroupPolicy(v); err != nil {
			t.Errorf("CheckGroupPolicy(%q): %v", v, err)
		}
	}
	for _, v := range []string{"checkpoint", "checkpoint:/x", "grow:", "bogus"} {
		if err := CheckGroupPolicy(v); err == nil {
			t.Errorf("CheckGroupPolicy(%q) accepted", v)
		}
	}
}
