package cli

import (
	"strings"
	"testing"

	"github.com/lkc-containers/lkc/internal/config"
)

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

// TestGroupMemoryBelowPage checks that a memory limit the kernel would
// round down to 0 pages is refused (512 for 512m), and sizes of a page
// and more, and -1, are taken.
func TestGroupMemoryBelowPage(t *testing.T) {
	for _, name := range []string{"memory", "memory-swap"} {
		for v, ok := range map[string]bool{"1": false, "512": false, "4095": false, "4096": true, "4k": true, "512m": true, "-1": true, "0": false} {
			err := setGroupFlag(&config.Resources{}, name, v)
			if (err == nil) != ok {
				t.Errorf("--%s %s: %v, want ok %v", name, v, err, ok)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "--"+name+" ") {
				t.Errorf("--%s %s: error %q does not name the flag", name, v, err)
			}
		}
	}
}
