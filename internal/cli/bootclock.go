package cli

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// bootAtStart gives a container with the /proc view (org.lkc.proc=virtual)
// a time namespace of its own whose boot is now, when its config asks for
// none: the kernel then counts its processes' start times (field 22 of
// /proc/<pid>/stat), its CLOCK_BOOTTIME and btime from the container's
// start, as the view's uptime does, so ps's elapsed times and %CPU come
// out right. The boottime offset is minus the host's CLOCK_BOOTTIME read
// here, before init starts: the namespace's clock starts at zero and is
// never negative, which the kernel requires. A config with a time
// namespace (and any timeOffsets) keeps what it asked; a kernel without
// time namespaces gets none.
func bootAtStart(cfg *config.Config) error {
	if !keepBootAtStart(cfg) {
		return nil
	}
	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &now); err != nil {
		return fmt.Errorf("clock_gettime(CLOCK_BOOTTIME): %w", err)
	}
	cfg.TimeOffsets = append(cfg.TimeOffsets, negated(now))
	return nil
}

// keepBootAtStart adds to cfg the time namespace bootAtStart gives a
// container with the /proc view, without offsets, and says whether it
// did: a restore's config, whose namespace CRIU restores from the images
// with offsets that make its clocks go on from the dump. Recorded, it has
// exec'd processes join the namespace and the view count the uptime from
// it (procfs.ContainerFromState), as before the checkpoint.
func keepBootAtStart(cfg *config.Config) bool {
	if cfg.HasNamespace("time") || unix.Access("/proc/self/timens_offsets", unix.F_OK) != nil {
		return false
	}
	cfg.Namespaces = append(cfg.Namespaces, config.Namespace{Type: "time"})
	return true
}

// negated is the boottime offset -t in timens_offsets' form: whole
// seconds, and nanoseconds from 0 to below one second added to them.
func negated(t unix.Timespec) config.TimeOffset {
	off := config.TimeOffset{Clock: "boottime", Secs: -t.Sec}
	if t.Nsec > 0 {
		off.Secs--
		off.Nanos = uint32(1e9 - t.Nsec)
	}
	return off
}
