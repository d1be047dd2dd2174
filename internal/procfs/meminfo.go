package procfs

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lkc-containers/lkc/internal/effective"
)

// memory is a container's memory in bytes, as meminfo and sysinfo show it.
type memory struct {
	fields    map[string]uint64 // meminfo key -> bytes; keys absent are 0 or the host's
	total     uint64
	free      uint64
	shared    uint64
	swapTotal uint64
	swapFree  uint64
	stat      map[string]uint64 // the cgroup's memory.stat, for vmstat's events
	v2        bool
}

// hostKept are the meminfo fields that describe the machine's address
// space or its huge page pool (which hugetlb, not the memory limit,
// rations: hugePages then scales the pool to the container's hugetlb
// limit), not memory a container's limit covers: they keep the host's
// values. Every other field is the container's or 0, so no host figure
// leaks through a field this code does not know yet; so are VmallocUsed
// (the host kernel's own allocations) and DirectMap* (the host kernel's
// page tables over all its RAM, which add up to the host's memory).
var hostKept = map[string]bool{
	"VmallocTotal": true, "VmallocChunk": true, "Hugepagesize": true,
	"HugePages_Total": true, "HugePages_Free": true, "HugePages_Rsvd": true, "HugePages_Surp": true,
	"Hugetlb": true,
}

// statFields maps meminfo fields to memory.stat's names: v1 (the
// hierarchical total_* counters) and v2.
var statFields = []struct{ key, v1, v2 string }{
	{"Cached", "total_cache", "file"},
	{"SwapCached", "total_swapcached", "swapcached"},
	{"Active(anon)", "total_active_anon", "active_anon"},
	{"Inactive(anon)", "total_inactive_anon", "inactive_anon"},
	{"Active(file)", "total_active_file", "active_file"},
	{"Inactive(file)", "total_inactive_file", "inactive_file"},
	{"Unevictable", "total_unevictable", "unevictable"},
	{"Dirty", "total_dirty", "file_dirty"},
	{"Writeback", "total_writeback", "file_writeback"},
	{"AnonPages", "total_rss", "anon"},
	{"Mapped", "total_mapped_file", "file_mapped"},
	{"Shmem", "total_shmem", "shmem"},
	{"Slab", "", "slab"},
	{"SReclaimable", "", "slab_reclaimable"},
	{"SUnreclaim", "", "slab_unreclaimable"},
	{"KReclaimable", "", "slab_reclaimable"},
	{"KernelStack", "", "kernel_stack"},
	{"PageTables", "", "pagetables"},
	{"SecPageTables", "", "sec_pagetables"},
	{"Percpu", "", "percpu"},
	{"AnonHugePages", "total_rss_huge", "anon_thp"},
	{"ShmemHugePages", "", "shmem_thp"},
	{"FileHugePages", "", "file_thp"},
	{"Zswap", "", "zswap"},
	{"Zswapped", "", "zswapped"},
}

// hostLine is one line of the host's /proc/meminfo.
type hostLine struct {
	key   string
	value uint64 // bytes when kB, else a count
	kB    bool
}

func parseMeminfo(s string) ([]hostLine, map[string]uint64, error) {
	var lines []hostLine
	byKey := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, nil, fmt.Errorf("meminfo line %q: no value", sc.Text())
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("meminfo line %q: %w", sc.Text(), err)
		}
		l := hostLine{key: key, value: v, kB: len(f) > 1 && f[1] == "kB"}
		if l.kB {
			l.value <<= 10
		}
		lines = append(lines, l)
		byKey[key] = l.value
	}
	return lines, byKey, nil
}

// hostMeminfo is the host's /proc/meminfo, parsed, kept for cacheFor
// and shared by every container: a container's meminfo takes from it only
// the layout, the caps (MemTotal, SwapTotal), the host's swap when the
// container's is not accounted and the fields of hostKept, and reading
// and parsing it was as much as the rest of a render. The result is read
// only.
func (h *Host) hostMeminfo() ([]hostLine, map[string]uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.Now()
	if m := h.meminfo; m != nil && now.Sub(m.at) < cacheFor && !now.Before(m.at) {
		return m.lines, m.byKey, nil
	}
	s, err := h.read("proc/meminfo")
	if err != nil {
		return nil, nil, err
	}
	lines, byKey, err := parseMeminfo(s)
	if err != nil {
		return nil, nil, err
	}
	h.meminfo = &parsedMeminfo{lines, byKey, now}
	return lines, byKey, nil
}

// parsedMeminfo is hostMeminfo's answer and when it was read.
type parsedMeminfo struct {
	lines []hostLine
	byKey map[string]uint64
	at    time.Time
}

// memory computes c's memory from its cgroup and the host's meminfo.
// What its limit leaves free is no more than the host has free: a
// container without a limit (or one above what the host has left) shows
// the host's MemFree and MemAvailable, not its total less its own use.
func (h *Host) memory(c *Container) (*memory, []hostLine, error) {
	lines, host, err := h.hostMeminfo()
	if err != nil {
		return nil, nil, err
	}
	dir, v2, err := h.cgroupDir(c, "memory")
	if err != nil {
		return nil, nil, err
	}
	stat, err := readKeyed(dir, "memory.stat")
	if err != nil {
		return nil, nil, err
	}
	lim, err := memoryLimits(c, v2, stat)
	if err != nil {
		return nil, nil, err
	}
	usageFile := "memory.usage_in_bytes"
	if v2 {
		usageFile = "memory.current"
	}
	usage, err := readUint(dir, usageFile)
	if err != nil {
		return nil, nil, err
	}
	m := &memory{fields: map[string]uint64{}, stat: stat, v2: v2}
	for _, f := range statFields {
		name := f.v1
		if v2 {
			name = f.v2
		}
		if name != "" {
			m.fields[f.key] = stat[name]
		}
	}
	m.total = capped(lim.Memory, host["MemTotal"])
	m.free = min(m.total-min(usage, m.total), host["MemFree"])
	if err := m.swap(dir, v2, lim, usage, host); err != nil {
		return nil, nil, err
	}
	m.derive(h, host)
	if err := h.hugePages(c, host, m.fields); err != nil {
		return nil, nil, err
	}
	return m, lines, nil
}

// memoryLimits returns the effective memory limits. On v1 the kernel
// states them itself in memory.stat (hierarchical_memory_limit and
// hierarchical_memsw_limit: the tightest over the ancestors), which saves
// a walk of two files per level on every read; elsewhere effective walks.
func memoryLimits(c *Container, v2 bool, stat map[string]uint64) (*effective.Limits, error) {
	mem, okMem := stat["hierarchical_memory_limit"]
	memsw, okSw := stat["hierarchical_memsw_limit"]
	if v2 || !okMem {
		return effective.ReadControllers(effective.Cgroups(c.Cgroups), "memory")
	}
	l := &effective.Limits{Memory: v1Limit(mem)}
	if okSw {
		l.MemSwap = v1Limit(memsw)
	}
	return l, nil
}

// v1Limit is a v1 byte limit; v1 writes "unlimited" as a number just
// under 2^63.
func v1Limit(v uint64) *effective.Limit[uint64] {
	if v >= 1<<62 {
		return &effective.Limit[uint64]{}
	}
	return &effective.Limit[uint64]{Value: v, Set: true}
}

// capped is a limit no larger than the host's amount.
func capped(l *effective.Limit[uint64], host uint64) uint64 {
	if l == nil || !l.Set {
		return host
	}
	return min(l.Value, host)
}

// swap sets SwapTotal/SwapFree: the swap the limits leave (v1 memsw −
// memory, v2 swap.max) no larger than the host's, less what the cgroup has
// swapped out. Without swap accounting (v1 memsw files absent, v2
// memory.swap.* absent) the container can swap as the host does and its
// use is unknown: host values.
func (m *memory) swap(dir string, v2 bool, lim *effective.Limits, usage uint64, host map[string]uint64) error {
	hostTotal := host["SwapTotal"]
	var used uint64
	switch {
	case v2:
		cur, err := readUint(dir, "memory.swap.current")
		if errors.Is(err, ErrNoController) {
			m.swapTotal, m.swapFree = hostTotal, host["SwapFree"]
			return nil
		}
		if err != nil {
			return err
		}
		m.swapTotal = capped(lim.Swap, hostTotal)
		used = cur
	case lim.MemSwap == nil:
		m.swapTotal, m.swapFree = hostTotal, host["SwapFree"]
		return nil
	default:
		m.swapTotal = hostTotal
		if lim.MemSwap.Set {
			mem := capped(lim.Memory, lim.MemSwap.Value)
			m.swapTotal = min(lim.MemSwap.Value-mem, hostTotal)
		}
		memsw, err := readUint(dir, "memory.memsw.usage_in_bytes")
		if err != nil {
			return err
		}
		used = memsw - min(usage, memsw)
	}
	m.swapFree = m.swapTotal - min(used, m.swapTotal)
	return nil
}

// derive fills the fields computed from others, as the kernel does, with
// the container's numbers.
func (m *memory) derive(h *Host, host map[string]uint64) {
	f := m.fields
	f["MemTotal"], f["MemFree"] = m.total, m.free
	f["MemAvailable"] = min(m.total, m.free+f["Inactive(file)"]+f["Active(file)"]/2+f["SReclaimable"], max(m.free, host["MemAvailable"]))
	f["Active"] = f["Active(anon)"] + f["Active(file)"]
	f["Inactive"] = f["Inactive(anon)"] + f["Inactive(file)"]
	f["SwapTotal"], f["SwapFree"] = m.swapTotal, m.swapFree
	f["CommitLimit"] = m.total*h.overcommitRatio()/100 + m.swapTotal
	f["Committed_AS"] = f["AnonPages"] + (m.swapTotal - m.swapFree)
	m.shared = f["Shmem"]
	for k := range hostKept {
		if v, ok := host[k]; ok {
			f[k] = v
		}
	}
}

func renderMeminfo(h *Host, c *Container) ([]byte, error) {
	m, lines, err := h.memory(c)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 28*len(lines)) // the kernel's line: 16 + 8 + " kB\n"
	for _, l := range lines {
		v := m.fields[l.key]
		name, num := meminfoWidths(l.key)
		if l.kB {
			b = fmt.Appendf(b, "%-*s%*d kB\n", name, l.key+":", num, v>>10)
		} else {
			b = fmt.Appendf(b, "%-*s%*d\n", name, l.key+":", num, v)
		}
	}
	return b, nil
}

// meminfoWidths is the kernel's layout of a meminfo line: the name (with
// its colon) padded to name columns, then the number right-aligned in num
// columns, wider when it needs. Most fields are show_val_kb's 16 and 8;
// the hugetlb counts and HardwareCorrupted are printed with "%5lu" after a
// 19-column name, which the same 24 columns match only while the number
// has at most 5 digits.
func meminfoWidths(key string) (name, num int) {
	switch key {
	case "HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp", "HardwareCorrupted":
		return 19, 5
	}
	return 16, 8
}

// overcommitRatio is vm.overcommit_ratio (50 when unreadable).
func (h *Host) overcommitRatio() uint64 {
	if s, err := h.readCached("proc/sys/vm/overcommit_ratio"); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64); err == nil {
			return v
		}
	}
	return 50
}
