package procfs

import (
	"math"
	"time"

	"golang.org/x/sys/unix"
)

// siLoadShift is sysinfo's fixed point for loads (SI_LOAD_SHIFT).
const siLoadShift = 16

// Sysinfo fills the container's view of sysinfo(2) with the numbers its
// /proc files show: totalram = MemTotal, freeram = MemFree, sharedram =
// Shmem, bufferram 0, its swap, its uptime, its load and task count.
func Sysinfo(c *Container, out *unix.Sysinfo_t) error { return Default.Sysinfo(c, out) }

// Sysinfo is the package's Sysinfo on h.
func (h *Host) Sysinfo(c *Container, out *unix.Sysinfo_t) error {
	m, _, err := h.memory(c)
	if err != nil {
		return err
	}
	// The kernel counts a second begun as a whole one.
	up := max(0, h.Now().Sub(c.Started))
	up = (up + time.Second - 1) / time.Second
	avg, t, err := h.currentTasks(c, true)
	if err != nil {
		return err
	}
	*out = unix.Sysinfo_t{
		Uptime:    int64(up),
		Totalram:  m.total,
		Freeram:   m.free,
		Sharedram: m.shared,
		Totalswap: m.swapTotal,
		Freeswap:  m.swapFree,
		Procs:     uint16(min(t.total, math.MaxUint16)),
		Unit:      1,
	}
	for i := range avg {
		out.Loads[i] = avg[i] << (siLoadShift - fshift)
	}
	return nil
}
