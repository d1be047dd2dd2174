// Package procfs computes a container's own view of the machine: the
// content of /proc/meminfo, cpuinfo, stat, uptime, loadavg, diskstats,
// swaps, vmstat and /sys/devices/system/cpu/online, and the answer of
// sysinfo(2), from the container's cgroups and start time, in the exact
// formats of the kernel's files so every parser keeps working. It only
// reads files (the host's /proc and cgroupfs, under a root tests
// replace), so the FUSE service and the seccomp agent are thin callers of
// pure functions.
//
// Errors: when the container's cgroup is gone (deleted while a read is in
// flight) the error wraps fs.ErrNotExist; when a controller the file needs
// is missing it wraps ErrNoController. Either way the caller serves the
// host's own file (or fails the read with EIO); nothing here blocks on
// anything but file reads.
package procfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lkc-containers/lkc/internal/effective"
	"github.com/lkc-containers/lkc/internal/state"
)

// ErrNoController marks a file that cannot be computed because the
// container's cgroup lacks a controller it needs.
var ErrNoController = errors.New("cgroup controller missing")

// Container is what the renderers know of one container.
type Container struct {
	// Cgroups is state.State.CgroupPaths: controller -> absolute
	// directory; the key "" is a cgroup v2 directory.
	Cgroups map[string]string
	// Started is when the container's uptime began: the boot of its time
	// namespace when it has one (its CLOCK_BOOTTIME, which CRIU carries
	// across a checkpoint, is its uptime); else when its init started,
	// less what it ran before the checkpoint it was restored from
	// (Before.RanNanos), so its uptime goes on from where the checkpoint
	// left it.
	Started time.Time
	// Before is what the container ran and used before that checkpoint;
	// its CPU times are added to the cgroup's. Zero for a container never
	// checkpointed.
	Before state.Carried
	// BootOffset is the boottime offset of the container's time
	// namespace (0 without one): its processes' start times count from
	// the host's boot less it.
	BootOffset time.Duration
	InitPid    int
	// Load is the container's load average, kept by the daemon; nil reads
	// as 0.00.
	Load *Load
	// Pids keeps the container's pid count (loadavg's last pid, stat's
	// processes) beyond the daemon's process, so that they do not go back
	// when a new daemon serves the container; nil keeps it in memory only.
	Pids PidRecord

	cpus cpuView    // see visibleCPUs
	dirs dirCache   // see cgroupDir
	pids pidCounter // see tasks
	huge hugeView   // see hugeLimit
}

// cpuView is a container's visible and allowed CPUs as visibleCPUs last
// computed them, and when.
type cpuView struct {
	mu               sync.Mutex
	visible, allowed effective.CPUSet
	at               time.Time
}

// Files are the virtual files, relative to /, that a container gets.
var Files = []string{"proc/meminfo", "proc/cpuinfo", "proc/stat", "proc/uptime",
	"proc/loadavg", "proc/diskstats", "proc/swaps", "sys/devices/system/cpu/online", "proc/vmstat"}

// Host is the machine the renderers read: its files under Root ("/" on
// the machine, a fake tree in tests) and its clock. Its methods may be
// called from many goroutines at once.
type Host struct {
	Root string
	Now  func() time.Time

	mu      sync.Mutex
	cache   map[string]cached // see readCached
	meminfo *parsedMeminfo    // see hostMeminfo
	stat    *statLayout       // see hostStat
	vmstat  *vmstatLayout     // see hostVmstat
}

// cached is a host file's content and when it was read.
type cached struct {
	content string
	at      time.Time
}

// cacheFor is how long readCached keeps a host file.
const cacheFor = time.Second

// Default is the real machine.
var Default = &Host{Root: "/", Now: time.Now}

// Render writes the file's content for c, in the kernel's format. On an
// error (cgroup gone, controller missing) the caller serves the host's file.
func Render(name string, c *Container) ([]byte, error) { return Default.Render(name, c) }

// Render is the package's Render on h.
func (h *Host) Render(name string, c *Container) ([]byte, error) {
	render, ok := renderers[name]
	if !ok {
		return nil, fmt.Errorf("virtual file %s: %w", name, os.ErrNotExist)
	}
	out, err := render(h, c)
	if err != nil {
		return nil, fmt.Errorf("rendering %s: %w", name, err)
	}
	return out, nil
}

var renderers = map[string]func(h *Host, c *Container) ([]byte, error){
	"proc/meminfo":                  renderMeminfo,
	"proc/cpuinfo":                  renderCpuinfo,
	"proc/stat":                     renderStat,
	"proc/uptime":                   renderUptime,
	"proc/loadavg":                  renderLoadavg,
	"proc/diskstats":                renderDiskstats,
	"proc/swaps":                    renderSwaps,
	"sys/devices/system/cpu/online": renderOnline,
	"proc/vmstat":                   renderVmstat,
}

// path names a host file under h.Root.
func (h *Host) path(name string) string { return filepath.Join(h.Root, name) }

// read reads a host file under h.Root.
func (h *Host) read(name string) (string, error) {
	return readString(h.path(name))
}

// readCached reads a host file that changes only when an administrator
// or a hotplug changes it (vm.overcommit_ratio, the CPUs online, the
// layout of /proc/stat), at most once per cacheFor: each costs as much to
// read as a cgroup file, and renders are meant to be cheap.
func (h *Host) readCached(name string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.Now()
	if c, ok := h.cache[name]; ok && now.Sub(c.at) < cacheFor && !now.Before(c.at) {
		return c.content, nil
	}
	s, err := h.read(name)
	if err != nil {
		return "", err
	}
	if h.cache == nil {
		h.cache = map[string]cached{}
	}
	h.cache[name] = cached{s, now}
	return s, nil
}

// cgroupDir returns the directory of c's cgroup for ctrl, or
// ErrNoController. The answer is kept for cacheFor: finding it stats the
// directory (and on v2 reads cgroup.controllers), a tenth of the server's
// CPU when every render asked again, and the container's cgroups do not
// move. A directory gone meanwhile still fails the read that follows,
// with fs.ErrNotExist.
func (h *Host) cgroupDir(c *Container, ctrl string) (dir string, v2 bool, err error) {
	d := &c.dirs
	d.mu.Lock()
	defer d.mu.Unlock()
	now := h.Now()
	if a, ok := d.m[ctrl]; ok && now.Sub(a.at) < cacheFor && !now.Before(a.at) {
		return a.dir, a.v2, a.err
	}
	dir, v2, ok, err := effective.Cgroups(c.Cgroups).Dir(ctrl)
	if err != nil {
		return "", false, err
	}
	if !ok {
		err = fmt.Errorf("%s: %w", ctrl, ErrNoController)
	}
	if d.m == nil {
		d.m = map[string]dirAnswer{}
	}
	d.m[ctrl] = dirAnswer{dir, v2, err, now}
	return dir, v2, err
}

// dirCache is a container's cgroupDir answers.
type dirCache struct {
	mu sync.Mutex
	m  map[string]dirAnswer
}

// dirAnswer is one cgroupDir answer and when it was found.
type dirAnswer struct {
	dir string
	v2  bool
	err error // nil or ErrNoController
	at  time.Time
}
