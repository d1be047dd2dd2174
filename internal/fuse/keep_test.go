package fuse

import (
	"testing"
	"time"
)

func TestRegularReader(t *testing.T) {
	hold := 10 * time.Second
	now := time.Unix(1000, 0)
	never := time.Time{}
	for _, c := range []struct {
		name          string
		asked, heldTo time.Time
		want          bool
	}{
		{"first read", never, never, false},
		{"second read 3 s after the first", now.Add(-3 * time.Second), never, true},
		{"the first read asking again after a barrier", now.Add(-time.Millisecond), never, false},
		{"second read 15 s after the first", now.Add(-15 * time.Second), never, false},
		{"first read 2 s after a hold ended", now.Add(-12 * time.Second), now.Add(-2 * time.Second), true},
		{"first read 8 s after a hold ended", now.Add(-18 * time.Second), now.Add(-8 * time.Second), false},
		{"a read while held", now.Add(-4 * time.Second), now.Add(6 * time.Second), true},
	} {
		if got := regular(c.asked, c.heldTo, time.Second, hold, now); got != c.want {
			t.Errorf("%s: regular = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestKeeperDue(t *testing.T) {
	k := newKeeper(nil)
	now := time.Unix(1000, 0)
	fresh := time.Second
	k.hold(1, fresh, now.Add(10*time.Second))
	k.hold(2, fresh, now.Add(10*time.Second))
	k.hold(3, fresh, now.Add(-2*time.Second)) // its hold (and a Fresh) ended
	at := map[uint64]time.Time{1: now.Add(-fresh), 2: now.Add(-fresh / 2), 3: now.Add(-5 * time.Second)}
	nodes, next := k.due(now, func(n uint64) (time.Time, bool) { t, ok := at[n]; return t, ok })
	if len(nodes) != 1 || nodes[0] != 1 {
		t.Errorf("due: %v, want [1] (a Fresh old)", nodes)
	}
	if want := now.Add(fresh / 2); !next.Equal(want) {
		t.Errorf("next due at %v, want %v (node 2)", next, want)
	}
	if _, ok := k.held[3]; ok {
		t.Error("a file whose hold ended is still held")
	}
}
