package stats

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
)

// netDev sums the bytes received and sent on every interface but lo of
// the network namespace of process pid: /proc/<pid>/net/dev shows that
// process's namespace whoever reads it, so a host reader needs no setns.
func netDev(proc string, pid int) (rx, tx uint64, err error) {
	data, err := cgroupfs.ReadFile(fmt.Sprintf("%s/%d/net/dev", proc, pid))
	if err != nil {
		return 0, 0, err
	}
	return parseNetDev(bytes.NewReader(data))
}

// parseNetDev reads the kernel's net/dev table: two header lines, then
// "iface: rx_bytes rx_packets ... (8 receive columns) tx_bytes ...".
func parseNetDev(r io.Reader) (rx, tx uint64, err error) {
	sc := bufio.NewScanner(r)
	for line := 0; sc.Scan(); line++ {
		if line < 2 {
			continue
		}
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			return 0, 0, fmt.Errorf("net/dev line %d: no interface name", line+1)
		}
		if strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			return 0, 0, fmt.Errorf("net/dev line %d: %d columns, want 16", line+1, len(f))
		}
		r, err1 := strconv.ParseUint(f[0], 10, 64)
		t, err2 := strconv.ParseUint(f[8], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, 0, fmt.Errorf("net/dev line %d: bad byte counts %q %q", line+1, f[0], f[8])
		}
		rx, tx = rx+r, tx+t
	}
	return rx, tx, sc.Err()
}
