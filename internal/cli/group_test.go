package cli

import "testing"

// TestCpusQuota checks that --cpus reads a decimal number exactly, as
// docker does: 0.29 CPUs is 29000 µs per 100000, not float64's 28999.
func TestCpusQuota(t *testing.T) {
	for _, c := range []struct {
		v     string
		quota int64
		ok    bool
	}{
		{"0.01", 1000, true},
		{"0.29", 29000, true},
		{"0.57", 57000, true},
		{"1.1", 110000, true},
		{"2", 200000, true},
		{"0.123456", 12345, true},
		{"0.009", 0, false},
		{"0", 0, false},
		{"-1", 0, false},
		{"2.01", 0, false},
		{"NaN", 0, false},
		{"", 0, false},
		{"one", 0, false},
	} {
		quota, ok := cpusQuota(c.v, 2)
		if quota != c.quota || ok != c.ok {
			t.Errorf("cpusQuota(%q, 2) = %d, %v; want %d, %v", c.v, quota, ok, c.quota, c.ok)
		}
	}
}
