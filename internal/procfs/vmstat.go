package procfs

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// vmstatPages are /proc/vmstat's gauges of pages that meminfo shows too,
// by meminfo's name: vmstat shows the container's, from the same numbers.
var vmstatPages = map[string]string{
	"nr_inactive_anon": "Inactive(anon)", "nr_active_anon": "Active(anon)",
	"nr_inactive_file": "Inactive(file)", "nr_active_file": "Active(file)",
	"nr_unevictable": "Unevictable", "nr_slab_reclaimable": "SReclaimable",
	"nr_slab_unreclaimable": "SUnreclaim", "nr_anon_pages": "AnonPages",
	"nr_mapped": "Mapped", "nr_file_pages": "Cached", "nr_dirty": "Dirty",
	"nr_writeback": "Writeback", "nr_shmem": "Shmem", "nr_page_table_pages": "PageTables",
	"nr_swapcached": "SwapCached",
}

// vmstatEvents are /proc/vmstat's event counters that memory.stat keeps
// per cgroup: v1's hierarchical name, v2's.
var vmstatEvents = map[string][2]string{
	"pgfault":    {"total_pgfault", "pgfault"},
	"pgmajfault": {"total_pgmajfault", "pgmajfault"},
	"pswpin":     {"", "pswpin"},
	"pswpout":    {"", "pswpout"},
}

// renderVmstat writes the host's /proc/vmstat layout (every counter, in
// its order) with the container's numbers: its memory in pages (the
// gauges meminfo shows), its faults and swap-ins from memory.stat, and
// pgpgin/pgpgout (kB read from and written to block devices, which
// vmstat shows as bi and bo) from its block I/O, as diskstats counts it.
// Every other counter is 0: a host counter since the host's boot, over the
// container's CPU time since its start (which /proc/stat shows and vmstat
// divides by), made vmstat's first line show the host's I/O hundreds of
// thousands of times over.
func renderVmstat(h *Host, c *Container) ([]byte, error) {
	m, _, err := h.memory(c)
	if err != nil {
		return nil, err
	}
	io, err := h.ioCounts(c)
	if err != nil && !errors.Is(err, ErrNoController) {
		return nil, err
	}
	keys, err := h.hostVmstat()
	if err != nil {
		return nil, err
	}
	page := uint64(os.Getpagesize())
	values := map[string]uint64{"nr_free_pages": m.free / page, "nr_kernel_stack": m.fields["KernelStack"] >> 10}
	for k, field := range vmstatPages {
		values[k] = m.fields[field] / page
	}
	for k, names := range vmstatEvents {
		if m.v2 {
			values[k] = m.stat[names[1]]
		} else if names[0] != "" {
			values[k] = m.stat[names[0]]
		}
	}
	for _, dev := range io {
		values["pgpgin"] += dev.readBytes >> 10
		values["pgpgout"] += dev.writeBytes >> 10
	}
	b := make([]byte, 0, 24*len(keys))
	for _, k := range keys {
		b = fmt.Appendf(b, "%s %d\n", k, values[k])
	}
	return b, nil
}

// vmstatLayout is the names of the host's /proc/vmstat counters, in its
// order, and when they were read.
type vmstatLayout struct {
	keys []string
	at   time.Time
}

// hostVmstat is the layout of the host's /proc/vmstat, read at most once
// per cacheFor for every container. The result is read only.
func (h *Host) hostVmstat() ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.Now()
	if l := h.vmstat; l != nil && now.Sub(l.at) < cacheFor && !now.Before(l.at) {
		return l.keys, nil
	}
	s, err := h.read("proc/vmstat")
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, line := range strings.Split(s, "\n") {
		if k, _, ok := strings.Cut(line, " "); ok {
			keys = append(keys, k)
		}
	}
	h.vmstat = &vmstatLayout{keys, now}
	return keys, nil
}
