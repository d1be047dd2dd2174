package stats

import (
	"math"
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
		{"v2", map[string]uint64{"inactive_file": 300}, 4096,
			Sample{MemoryUsed: 1000, MemoryWorkingSet: 700, MemoryLimit: 4096}},
		{"unlimited v2", map[string]uint64{"inactive_file": 2000}, math.MaxUint64,
			Sample{MemoryUsed: 1000}},
	} {
		cg := &cgroups.Stats{Memory: cgroups.Memory{Usage: cgroups.MemoryEntry{Usage: 1000, Limit: tc.lim}, Raw: tc.raw}}
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
