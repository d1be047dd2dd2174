package spec

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
	"github.com/lkc-containers/lkc/internal/config"
)

// cgroupHost is what resource validation needs to know about the machine,
// so a limit it cannot honour fails before anything is created.
type cgroupHost struct {
	unified   bool            // pure cgroup v2
	pagesizes map[string]bool // huge page sizes, as cgroup files name them
	cpus      map[int]bool    // online CPUs; nil: unknown, not checked
	mems      map[int]bool    // online memory nodes; nil: unknown
}

// sysRoot is /sys; tests point it at a fake tree.
var sysRoot = "/sys"

// needsHost reports whether checking r needs probeCgroupHost, which create
// would rather not pay for.
func needsHost(r *specs.LinuxResources) bool {
	cpu := r.CPU != nil && (r.CPU.Cpus != "" || r.CPU.Mems != "" || r.CPU.RealtimeRuntime != nil || r.CPU.RealtimePeriod != nil)
	return cpu || len(r.HugepageLimits) > 0 || len(r.Unified) > 0
}

func probeCgroupHost() cgroupHost {
	h := cgroupHost{pagesizes: map[string]bool{}}
	h.unified, _ = cgroupfs.IsV2(filepath.Join(sysRoot, "fs/cgroup"))
	dirs, _ := filepath.Glob(filepath.Join(sysRoot, "kernel/mm/hugepages/hugepages-*kB"))
	for _, d := range dirs {
		kb := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(d), "hugepages-"), "kB")
		if n, err := strconv.ParseUint(kb, 10, 64); err == nil {
			h.pagesizes[pagesizeName(n)] = true
		}
	}
	h.cpus = readIDList(filepath.Join(sysRoot, "devices/system/cpu/online"))
	h.mems = readIDList(filepath.Join(sysRoot, "devices/system/node/online"))
	return h
}

// pagesizeName spells a page size of kb KiB as the hugetlb files do:
// 2048 -> "2MB", 1048576 -> "1GB", 64 -> "64KB".
func pagesizeName(kb uint64) string {
	units := []string{"KB", "MB", "GB", "TB"}
	i := 0
	for kb >= 1024 && kb%1024 == 0 && i < len(units)-1 {
		kb /= 1024
		i++
	}
	return strconv.FormatUint(kb, 10) + units[i]
}

func readIDList(file string) map[int]bool {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	ids, err := parseIDList(strings.TrimSpace(string(data)))
	if err != nil {
		return nil
	}
	return ids
}

// parseIDList parses a kernel list such as "0-3,5,7-8".
func parseIDList(s string) (map[int]bool, error) {
	ids, err := config.ParseIDList(s)
	if err != nil {
		return nil, invalid("%v", err)
	}
	return ids, nil
}
