package oompolicy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// On cgroup v2 the OOM killer cannot be turned off. The service sets
// memory.high a headroom below memory.max, where the kernel throttles the
// allocator (reclaim and sleeps) instead of killing, and watches
// memory.events with inotify (a rising `high` count wakes the loop) and,
// where the kernel has PSI, a trigger on memory.pressure (the tasks
// stalled on memory for a share of a window wakes it too). A
// container at memory.high is held for the policy only when its anonymous
// memory reaches high: page cache filling up to high is normal, reclaimed
// by the kernel, and no reason to act.

// headroom is how far below memory.max the service sets memory.high:
// limit/16 clamped to 4-256 MiB.
func headroom(limit uint64) uint64 { return min(max(limit/16, 4<<20), 256<<20) }

// armV2 arms a v2 memory cgroup: memory.high (unless the config set one)
// and an inotify watch on memory.events, which it returns.
func armV2(a *armed) (int, error) {
	limit, err := readLimitV2(a.dir, "memory.max")
	if err != nil {
		return -1, err
	}
	if limit == 0 {
		return -1, errors.New("no memory limit (memory.max is max): nothing to act before")
	}
	high, err := readLimitV2(a.dir, "memory.high")
	if err != nil {
		return -1, err
	}
	// The service owns memory.high when it is unset or holds the value
	// the service sets (a previous worker's); otherwise the config set it.
	if high == 0 || high == limit-headroom(limit) {
		a.ownsHigh = true
		if err := writeInt(a.dir, "memory.high", int64(limit-headroom(limit))); err != nil {
			return -1, err
		}
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return -1, fmt.Errorf("arming: inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, filepath.Join(a.dir, "memory.events"), unix.IN_MODIFY); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("arming: watching memory.events: %w", err)
	}
	// A write to memory.max (`lkc update`, `lkc group update`) moves the
	// memory.high the service owns with it (followLimit).
	if a.maxWd, err = unix.InotifyAddWatch(fd, filepath.Join(a.dir, "memory.max"), unix.IN_MODIFY); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("arming: watching memory.max: %w", err)
	}
	if a.psi, a.trigger, err = psiTrigger(a.dir); err != nil {
		unix.Close(fd)
		return -1, err
	}
	a.kernelKills, _ = eventCount(a.dir, "oom_kill")
	return fd, nil
}

// psiTriggers are the memory.pressure triggers tried in turn: 150 ms of
// stall in 1 s acts well before a throttled allocator reaches memory.max;
// a daemon without CAP_SYS_RESOURCE may only use windows of whole 2 s
// (Linux 6.5 on), so the same share over 2 s is the second choice.
var psiTriggers = []string{"some 150000 1000000", "some 300000 2000000"}

// psiTrigger writes a trigger on the cgroup's memory.pressure and returns
// its fd, which polls EPOLLPRI when the trigger fires, and the trigger.
// A kernel without PSI (no memory.pressure, or EOPNOTSUPP when it is
// turned off) returns -1: memory.events alone wakes the loop then.
func psiTrigger(dir string) (int, string, error) {
	p := filepath.Join(dir, "memory.pressure")
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
		return -1, "", nil
	}
	if err != nil {
		return -1, "", fmt.Errorf("arming: opening %s: %w", p, err)
	}
	for _, t := range psiTriggers {
		// The kernel reads the trigger with its terminating NUL.
		if _, err = unix.Write(fd, append([]byte(t), 0)); err == nil {
			return fd, t, nil
		}
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EPERM) {
			break
		}
	}
	unix.Close(fd)
	if errors.Is(err, unix.EOPNOTSUPP) {
		return -1, "", nil
	}
	return -1, "", fmt.Errorf("arming: writing a trigger to %s: %w", p, err)
}

// heldV2 says whether a v2 container is at memory.high with its own
// (anonymous) memory, the point where v1 would hold it, and the kernel
// throttled it lately (memory.events' high count rose within the longest
// throttling sleep). At the kernel stage of a hold, where the service
// lifted memory.high, the hold lasts while the memory stays at the level
// the service sets high to: it ends when the kernel's OOM killer (at
// memory.max) or the container freed it, not the moment high is lifted
// (the service would put high back under a task still there, and the
// kernel would never get its turn).
func heldV2(a *armed) (bool, error) {
	dir := a.dir
	high, err := readLimitV2(dir, "memory.high")
	if err != nil {
		return false, err
	}
	kernelStage := high == 0 && a.ownsHigh && a.stage == 2 && !a.heldSince.IsZero()
	if kernelStage {
		limit, err := readLimitV2(dir, "memory.max")
		if err != nil || limit == 0 {
			return false, err
		}
		high = limit - headroom(limit)
	}
	if high == 0 {
		return false, nil
	}
	count, err := eventCount(dir, "high")
	if err != nil {
		return false, err
	}
	if count > a.highCount {
		a.highCount, a.highAt = count, time.Now()
	}
	// The kernel's throttling sleeps at most 2 s between charges; a PSI
	// trigger fires at most once a window (up to 2 s) while the stall lasts.
	if !kernelStage && time.Since(a.highAt) > 2*time.Second && time.Since(a.stallAt) > 2*time.Second {
		return false, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "anon "); ok {
			anon, _ := strconv.ParseUint(v, 10, 64)
			return anon+headroom(high)/4 >= high, nil
		}
	}
	return false, fmt.Errorf("%s/memory.stat: no anon line", dir)
}

// eventCount reads one count of memory.events (0 when the kernel has no
// such line).
func eventCount(dir, key string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, "memory.events"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			return strconv.ParseUint(v, 10, 64)
		}
	}
	return 0, nil
}

// readLimitV2 reads memory.max or memory.high: 0 for "max".
func readLimitV2(dir, file string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// v2Killer is killerOn on v2: the kernel acts alone when memory.high is
// off (then the allocator reaches memory.max and the kernel kills).
func v2Killer(a *armed, on bool) error {
	if !a.ownsHigh {
		return nil
	}
	if on {
		return os.WriteFile(filepath.Join(a.dir, "memory.high"), []byte("max"), 0)
	}
	limit, err := readLimitV2(a.dir, "memory.max")
	if err != nil || limit == 0 {
		return err
	}
	return writeInt(a.dir, "memory.high", int64(limit-headroom(limit)))
}

// raiseV2 raises memory.max and, when the service owns it, memory.high.
func raiseV2(a *armed, to uint64) error {
	if err := writeInt(a.dir, "memory.max", int64(to)); err != nil {
		return err
	}
	if a.ownsHigh {
		return writeInt(a.dir, "memory.high", int64(to-headroom(to)))
	}
	return nil
}

// readInotify drains an inotify fd and says whether one of the events
// came from watch wd.
func readInotify(fd, wd int) bool {
	var b [4096]byte
	seen := false
	for {
		n, err := unix.Read(fd, b[:])
		if err != nil || n < unix.SizeofInotifyEvent {
			return seen
		}
		// struct inotify_event: int wd, u32 mask, u32 cookie, u32 len, name.
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			seen = seen || int(int32(binary.NativeEndian.Uint32(b[off:]))) == wd
			off += unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(b[off+12:]))
		}
	}
}

// followLimit keeps the memory.high the service owns a headroom below a
// memory.max that someone else changed (none at all when the limit is
// gone). During a hold the policy owns both, and the hold's end re-arms.
func (s *Service) followLimit(a *armed) {
	if !a.ownsHigh || !a.heldSince.IsZero() {
		return
	}
	limit, err := readLimitV2(a.dir, "memory.max")
	if err != nil {
		return
	}
	high, want := "max", "max"
	if limit > 0 {
		want = strconv.FormatUint(limit-headroom(limit), 10)
	}
	if b, err := os.ReadFile(filepath.Join(a.dir, "memory.high")); err == nil {
		high = strings.TrimSpace(string(b))
	}
	if high == want {
		return
	}
	if err := os.WriteFile(filepath.Join(a.dir, "memory.high"), []byte(want), 0); err != nil {
		s.deps.Logf("oom: %s: following memory.max: %v", a.name(), err)
		return
	}
	s.deps.Logf("oom: %s: memory.max is %s now: memory.high %s", a.name(), map[bool]string{true: "max", false: strconv.FormatUint(limit, 10)}[limit == 0], want)
}
