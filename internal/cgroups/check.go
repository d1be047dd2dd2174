package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
	"github.com/lkc-containers/lkc/internal/config"
)

// The kernel's bounds on a CFS period and quota, in microseconds
// (min_cfs_quota_period, max_cfs_quota_period).
const (
	minCFS = 1000
	maxCFS = 1000000
)

// CheckValues refuses, before an update or a create writes anything,
// the values of r the kernel is known to refuse, naming the resource;
// the kernel's own refusals of the rest are undone by applyUndoable (an
// update's) or by removing the cgroup (a create's). m's cgroup need not
// exist yet.
func CheckValues(m Manager, r *config.Resources) error {
	sizes := []struct {
		key string
		v   *int64
	}{{"memory.limit", r.MemoryLimit}, {"memory.reservation", r.MemoryReservation}, {"memory.swap", r.MemorySwap}}
	for _, s := range sizes {
		if s.v != nil && *s.v < -1 {
			return fmt.Errorf("linux.resources.%s: %d is neither a size in bytes nor -1 (unlimited)", s.key, *s.v)
		}
	}
	if p := r.CPUPeriod; p != nil && (*p < minCFS || *p > maxCFS) {
		return fmt.Errorf("linux.resources.cpu.period: %d µs is outside the kernel's %d–%d", *p, minCFS, maxCFS)
	}
	if q := r.CPUQuota; q != nil && *q >= 0 && *q < minCFS {
		return fmt.Errorf("linux.resources.cpu.quota: %d µs is below the kernel's minimum %d (-1 is unlimited)", *q, minCFS)
	}
	if err := checkPinnedMemory(m, r); err != nil {
		return err
	}
	if err := checkCpusetList(m, "cpu.cpus", "cpuset.cpus", r.CPUs, "/sys/devices/system/cpu/possible"); err != nil {
		return err
	}
	return checkCpusetList(m, "cpu.mems", "cpuset.mems", r.Mems, "/sys/devices/system/node/possible")
}

// checkPinnedMemory refuses, on v1 with no swap, a memory limit below the
// memory the cgroup holds that the kernel cannot reclaim (anonymous and
// shared memory): the kernel would reclaim all it can, then refuse (EBUSY).
// v2 takes such a limit and OOM-kills instead, as runc leaves it.
func checkPinnedMemory(m Manager, r *config.Resources) error {
	if r.MemoryLimit == nil || *r.MemoryLimit < 0 {
		return nil
	}
	if _, v2 := cgroupfs.V2Dir(m.Paths()); v2 || swapOn() {
		return nil
	}
	s, err := m.Stats()
	if err != nil {
		return nil // the kernel decides
	}
	pinned := s.Memory.Raw["total_rss"] + s.Memory.Raw["total_shmem"]
	if uint64(*r.MemoryLimit) < pinned {
		return fmt.Errorf("linux.resources.memory.limit: %d is below the %d bytes the container holds that cannot be reclaimed without swap", *r.MemoryLimit, pinned)
	}
	return nil
}

// swapOn reports whether the host has swap (an unreadable /proc/swaps
// counts as yes, which leaves the decision to the kernel).
func swapOn() bool {
	data, err := os.ReadFile("/proc/swaps")
	return err != nil || strings.Count(strings.TrimSpace(string(data)), "\n") > 0
}

// checkCpusetList refuses a CPU or memory node list (value of file) that is
// not a list or names one the kernel would refuse: on v1 one outside the
// parent cgroup's (the nearest existing ancestor's, for a cgroup whose
// parent is yet to be made with its list), on v2 one the machine cannot
// have (possible).
func checkCpusetList(m Manager, key, file, value, possible string) error {
	if value == "" {
		return nil
	}
	want, err := parseList(value)
	if err != nil {
		return fmt.Errorf("linux.resources.%s %q: %w", key, value, err)
	}
	allowedFile := possible
	if _, v2 := cgroupfs.V2Dir(m.Paths()); !v2 {
		d, found := (&v1{dirs: m.Paths()}).dir("cpuset")
		if !found {
			return nil // plan names the missing controller
		}
		dir := filepath.Dir(d)
		for dir != "/" && !exists(filepath.Join(dir, file)) {
			dir = filepath.Dir(dir)
		}
		allowedFile = filepath.Join(dir, file)
	}
	data, err := os.ReadFile(allowedFile)
	if err != nil {
		return nil // nothing to check against: the kernel decides
	}
	allowed, err := parseList(strings.TrimSpace(string(data)))
	if err != nil {
		return nil
	}
	for n := range want {
		if !allowed[n] {
			return fmt.Errorf("linux.resources.%s %q: %d is not among the allowed %s", key, value, n, strings.TrimSpace(string(data)))
		}
	}
	return nil
}

// parseList reads a kernel list such as "0-2,5" into its members.
func parseList(s string) (map[int]bool, error) {
	out := map[int]bool{}
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a {
			return nil, fmt.Errorf("not a list such as 0-2,5")
		}
		if b-a > 1<<16 {
			return nil, fmt.Errorf("range %s too large", part)
		}
		for n := a; n <= b; n++ {
			out[n] = true
		}
	}
	return out, nil
}
