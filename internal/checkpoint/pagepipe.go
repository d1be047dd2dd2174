package checkpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// lazyPipeBytes is the pipe size CRIU's page server asks for (F_SETPIPE_SZ)
// before it serves lazy pages: 819 pages with CRIU 4.1 and 4.2 on x86-64,
// seen with strace. When the kernel refuses it, CRIU goes on with no pipe
// and its first page request fails with "page-pipe: splice: -1: Bad file
// descriptor".
const lazyPipeBytes = 819 * 4096

// capSysResource is CAP_SYS_RESOURCE's bit in /proc/self/status.
const capSysResource = 24

// CanServeLazyPages reports why CRIU's page server cannot serve lazy pages
// (post-copy) from this host, or nil when it can. A pipe larger than
// fs.pipe-max-size takes CAP_SYS_RESOURCE, which some hosts withhold even
// from root (this project's test machines do); the sysctl is then the way.
func CanServeLazyPages() error {
	max, err := readUint("/proc/sys/fs/pipe-max-size")
	if err != nil || max >= lazyPipeBytes {
		return nil // cannot tell: let CRIU try
	}
	if capable, err := hasCap(capSysResource); err != nil || capable {
		return nil
	}
	return fmt.Errorf("CRIU's page server needs %d-byte pipes, above fs.pipe-max-size (%d), and lkc runs without CAP_SYS_RESOURCE: run `sysctl -w fs.pipe-max-size=4194304` (scripts/install-criu.sh does)",
		lazyPipeBytes, max)
}

func readUint(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
}

// hasCap reports whether capability bit is in this process's effective set.
func hasCap(bit uint) (bool, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			set, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return set&(1<<bit) != 0, err
		}
	}
	return false, fmt.Errorf("no CapEff in /proc/self/status")
}
