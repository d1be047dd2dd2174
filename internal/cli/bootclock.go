package cli

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

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
// never negative, which the kernel requires. A container that joins
// another's pid namespace (a pod's) joins that one's time namespace
// instead, when it has one (sharedTimeNS): processes that see each other
// must count their start times from one boot. A config with a time
// namespace (new or joined, and any timeOffsets) keeps what it asked; a
// kernel without time namespaces gets none.
func bootAtStart(cfg *config.Config) error {
	if cfg.HasNamespace("time") || !haveTimeNS() {
		return nil
	}
	shared, err := sharedTimeNS(cfg)
	if err != nil {
		return err
	}
	if shared != "" {
		cfg.Namespaces = append(cfg.Namespaces, config.Namespace{Type: "time", Path: shared})
		return nil
	}
	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &now); err != nil {
		return fmt.Errorf("clock_gettime(CLOCK_BOOTTIME): %w", err)
	}
	keepBootAtStart(cfg)
	cfg.TimeOffsets = append(cfg.TimeOffsets, negated(now))
	return nil
}

// sharedTimeNS is the time namespace a container that joins the pid
// namespace of cfg (linux.namespaces' pid path: a pod's, as containerd's
// CRI gives for a pod-level PID namespace, or another container's) shares:
// that of the namespace's init (its pid 1, the owner), as
// /proc/<init>/ns/time, when it is not lkc's own (the owner has a time
// namespace of its own). "" for a config with a pid namespace of its own
// or an owner without one: the container then gets its own, as before.
func sharedTimeNS(cfg *config.Config) (string, error) {
	path := ""
	for _, ns := range cfg.Namespaces {
		if ns.Type == "pid" {
			path = ns.Path
		}
	}
	if path == "" {
		return "", nil
	}
	init, err := pidNSInit(path)
	if err != nil {
		return "", fmt.Errorf("the init of pid namespace %s: %w", path, err)
	}
	owner := "/proc/" + strconv.Itoa(init) + "/ns/time"
	theirs, err1 := os.Readlink(owner)
	ours, err2 := os.Readlink("/proc/self/ns/time")
	if err := errors.Join(err1, err2); err != nil {
		return "", err
	}
	if theirs == ours {
		return "", nil
	}
	return owner, nil
}

// nsGetTGIDFromPIDNS is nsfs's NS_GET_TGID_FROM_PIDNS (Linux 6.11),
// _IOR(0xb7, 0x7, int): the caller's number for a process of a pid
// namespace, given its number there.
const nsGetTGIDFromPIDNS = 0x8004b707

// pidNSInit is the host's pid (the caller's) of the init of the pid
// namespace at path (its pid 1): asked of the namespace itself, which
// also finds it from a bind mount of the namespace; where the kernel is
// too old to say, the pid path names (/proc/<pid>/ns/pid).
func pidNSInit(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), nsGetTGIDFromPIDNS, 1)
	if errno == 0 {
		return int(r), nil
	}
	if errno != unix.ENOTTY && errno != unix.EINVAL {
		return 0, &os.PathError{Op: "ioctl NS_GET_TGID_FROM_PIDNS", Path: path, Err: errno}
	}
	f := strings.Split(path, "/")
	if len(f) == 5 && f[0] == "" && f[1] == "proc" && f[3] == "ns" && f[4] == "pid" {
		if pid, err := strconv.Atoi(f[2]); err == nil {
			return pid, nil
		}
	}
	return 0, &os.PathError{Op: "ioctl NS_GET_TGID_FROM_PIDNS", Path: path, Err: errno}
}

// haveTimeNS says whether the kernel has time namespaces.
func haveTimeNS() bool {
	return unix.Access("/proc/self/timens_offsets", unix.F_OK) == nil
}

// keepBootAtStart adds to cfg the time namespace bootAtStart gives a
// container with the /proc view, without offsets, and says whether it
// did: a restore's config, whose namespace CRIU restores from the images
// with offsets that make its clocks go on from the dump. Recorded, it has
// exec'd processes join the namespace and the view count the uptime from
// it (procfs.ContainerFromState), as before the checkpoint.
func keepBootAtStart(cfg *config.Config) bool {
	if cfg.HasNamespace("time") || !haveTimeNS() {
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
