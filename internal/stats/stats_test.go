package stats

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lkc-containers/lkc/internal/cgroups"
)

const netDevText = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  999999      10    0    0    0     0          0         0   999999      10    0    0    0     0       0          0
  eth0:    1500      12    0    0    0     0          0         0      700       7    0    0    0     0       0          0
  eth1:      20       1    0    0    0     0          0         0        3       1    0    0    0     0       0          0
`

func TestParseNetDev(t *testing.T) {
	rx, tx, err := parseNetDev(strings.NewReader(netDevText))
	if err != nil {
		t.Fatal(err)
	}
	if rx != 1520 || tx != 703 {
		t.Errorf("rx, tx = %d, %d; want 1520, 703 (lo left out)", rx, tx)
	}
	bad := strings.Replace(netDevText, "1500", "x", 1)
	if _, _, err := parseNetDev(strings.NewReader(bad)); err == nil {
		t.Error("a bad byte count is not an error")
	}
}

func TestFill(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  map[string]uint64
		lim  uint64
		want Sample
	}{
		{"v1", map[string]uint64{"total_inactive_file": 100, "inactive_file": 5}, 9223372036854771712,
			Sample{MemoryUsed: 1000, MemoryWorkingSet: 900}},
		// v1's cache is the cgroup's own; total_cache counts its
		// sub-cgroups too (exec --cgroup), as the usage does.
		{"v1 hierarchical cache", map[string]uint64{"total_inactive_file": 100, "cache": 10, "total_cache": 400}, 4096,
			Sample{MemoryUsed: 1000, MemoryWorkingSet: 900, MemoryCache: 400, MemoryLimit: 4096}},
		{"v2", map[string]uint64{"inactive_file": 300}, 4096,
			Sample{MemoryUsed: 1000, MemoryWorkingSet: 700, MemoryLimit: 4096}},
		{"unlimited v2", map[string]uint64{"inactive_file": 2000}, math.MaxUint64,
			Sample{MemoryUsed: 1000}},
	} {
		cg := &cgroups.Stats{Memory: cgroups.Memory{Usage: cgroups.MemoryEntry{Usage: 1000, Limit: tc.lim}, Raw: tc.raw,
			Cache: tc.raw["cache"] + tc.raw["file"]}} // as the v1 and v2 readers set it
		cg.Blkio.IoServiceBytesRecursive = []cgroups.BlkioEntry{
			{Major: 8, Op: "Read", Value: 10}, {Major: 8, Op: "Write", Value: 1}, {Major: 9, Op: "Read", Value: 5},
		}
		var got Sample
		fill(&got, cg)
		tc.want.BlockRead, tc.want.BlockWrite = 15, 1
		if got != tc.want {
			t.Errorf("%s: got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

// TestReadAllSkipsUnreadable: reading every container, one whose record
// is corrupt is left out and told to Warn once, not a failure of the
// whole read; named, it fails the read.
func TestReadAllSkipsUnreadable(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "bad"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bad", "state.json"), []byte("{junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "creating"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := NewReader(root)
	var warned []error
	r.Warn = func(err error) { warned = append(warned, err) }
	for i := 0; i < 2; i++ {
		s, err := r.Read()
		if err != nil || len(s) != 0 {
			t.Fatalf("read %d of every container: %v, %v; want none and no error", i, s, err)
		}
	}
	if len(warned) != 1 || !strings.Contains(warned[0].Error(), "container bad: ") {
		t.Errorf("warnings %v, want one naming container bad", warned)
	}
	if _, err := r.Read("bad"); err == nil {
		t.Error("reading container bad by name: no error")
	}
}
