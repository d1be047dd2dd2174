package procfs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lkc-containers/lkc/internal/state"
)

// ContainerFromState describes the container s records. Started is the
// boot of its time namespace when it has one (the host's boot less the
// namespace's boottime offset): the namespace's CLOCK_BOOTTIME is then its
// uptime, which its processes' start times count from and which CRIU
// carries across a checkpoint and a migration (it sets the offset on
// restore so that the clock goes on from the dump). Without one, Started
// comes from its init's start time (boot-relative clock ticks) and the
// host's uptime, less what it ran before a checkpoint.
func ContainerFromState(s *state.State) (*Container, error) { return Default.ContainerFromState(s) }

// ContainerFromState is the package's ContainerFromState on h.
func (h *Host) ContainerFromState(s *state.State) (*Container, error) {
	boot, err := h.bootTime()
	if err != nil {
		return nil, err
	}
	c := &Container{Cgroups: s.CgroupPaths, InitPid: s.InitPid}
	if s.Carried != nil {
		c.Before = *s.Carried
	}
	if s.Config != nil && s.Config.HasNamespace("time") {
		if c.BootOffset, err = h.bootOffset(s.InitPid); err != nil {
			return nil, fmt.Errorf("container %s: init %d: %w", s.ID, s.InitPid, err)
		}
		c.Started = boot.Add(-c.BootOffset)
		return c, nil
	}
	start := s.InitStart
	if start == 0 {
		stat, err := h.read("proc/" + strconv.Itoa(s.InitPid) + "/stat")
		if err != nil {
			return nil, fmt.Errorf("container %s: init %d: %w", s.ID, s.InitPid, err)
		}
		if _, start, err = parseStat(stat); err != nil {
			return nil, fmt.Errorf("container %s: init %d: %w", s.ID, s.InitPid, err)
		}
	}
	c.Started = boot.Add(time.Duration(start)*(time.Second/userHZ) - time.Duration(c.Before.RanNanos))
	return c, nil
}

// Carry is what c's view shows it has run and used, for a checkpoint to
// keep (state.Carried), so that the restored container's view goes on
// from it: its uptime and its CPU times, per CPU as /proc/stat shows them
// (those of an earlier restore included).
func (h *Host) Carry(c *Container) (*state.Carried, error) {
	visible, allowed, err := h.visibleCPUs(c)
	if err != nil {
		return nil, err
	}
	times, err := h.cpuTimes(c, visible, allowed)
	if err != nil {
		return nil, err
	}
	ran := max(0, h.Now().Sub(c.Started))
	return &state.Carried{RanNanos: int64(ran), UserNanos: times.user, SystemNanos: times.system}, nil
}

// bootOffset is the boottime offset of pid's time namespace for its
// children (/proc/<pid>/timens_offsets: "boottime <secs> <nanos>"), which
// is the container's own for its init.
func (h *Host) bootOffset(pid int) (time.Duration, error) {
	name := "proc/" + strconv.Itoa(pid) + "/timens_offsets"
	s, err := h.read(name)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "boottime" {
			continue
		}
		secs, err1 := strconv.ParseInt(f[1], 10, 64)
		nanos, err2 := strconv.ParseInt(f[2], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return 0, fmt.Errorf("/%s: %w", name, err)
		}
		return time.Duration(secs)*time.Second + time.Duration(nanos), nil
	}
	return 0, fmt.Errorf("/%s has no boottime line", name)
}

// bootTime is when the host booted, from /proc/uptime (to the hundredth
// of a second; /proc/stat's btime is whole seconds).
func (h *Host) bootTime() (time.Time, error) {
	s, err := h.read("proc/uptime")
	if err != nil {
		return time.Time{}, err
	}
	f := strings.Fields(s)
	if len(f) == 0 {
		return time.Time{}, fmt.Errorf("/proc/uptime %q: empty", s)
	}
	up, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("/proc/uptime %q: %w", s, err)
	}
	return h.Now().Add(-time.Duration(up * float64(time.Second))), nil
}
