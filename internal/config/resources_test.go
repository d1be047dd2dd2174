package config

import "testing"

func TestSwapBelowMemory(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	cases := []struct {
		limit, swap *int64
		below       bool
	}{
		{n(64 << 20), n(32 << 20), true},
		{n(64 << 20), n(64 << 20), false},
		{n(64 << 20), n(128 << 20), false},
		{n(64 << 20), n(-1), false},
		{n(-1), n(32 << 20), false},
		{n(64 << 20), n(0), false},
		{n(0), n(32 << 20), false},
		{nil, n(32 << 20), false},
		{n(64 << 20), nil, false},
	}
	for _, c := range cases {
		r := Resources{MemoryLimit: c.limit, MemorySwap: c.swap}
		if got := r.SwapBelowMemory(); got != c.below {
			t.Errorf("limit %v swap %v: SwapBelowMemory = %v, want %v", deref(c.limit), deref(c.swap), got, c.below)
		}
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}
