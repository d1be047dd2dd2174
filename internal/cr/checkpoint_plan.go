package cr

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
	"github.com/lkc-containers/lkc/internal/checkpoint"
	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/mount"
)

// What CRIU must be told about a container, on dump and on restore: the
// mounts whose source lies outside the container (bind mounts, masks made of
// /dev/null, cgroup directories bound in), the namespaces it joined rather
// than created, and the cgroup the restored tasks go to.

// networkLock is how CRIU blocks the container's network while it dumps:
// nftables is built into CRIU 4 and needs no iptables-restore on PATH. Dump
// and restore must use the same method.
const networkLock = checkpoint.LockNftables

// cgroupMode parses runc's --manage-cgroups-mode; "" leaves CRIU's default.
func cgroupMode(s string) (*checkpoint.CgroupMode, error) {
	var m checkpoint.CgroupMode
	switch s {
	case "":
		return nil, nil
	case "soft":
		m = checkpoint.CgroupSoft
	case "full":
		m = checkpoint.CgroupFull
	case "strict":
		m = checkpoint.CgroupStrict
	case "ignore":
		m = checkpoint.CgroupIgnore
	default:
		return nil, fmt.Errorf("--manage-cgroups-mode %q: use soft, full, strict or ignore", s)
	}
	return &m, nil
}

var nsCloneFlags = map[string]uint32{
	"network": unix.CLONE_NEWNET, "ipc": unix.CLONE_NEWIPC, "uts": unix.CLONE_NEWUTS,
	"mount": unix.CLONE_NEWNS, "pid": unix.CLONE_NEWPID, "user": unix.CLONE_NEWUSER,
	"cgroup": unix.CLONE_NEWCGROUP,
}

// emptyNSFlags turns runc's --empty-ns values into clone flags. CRIU
// supports only the network namespace there.
func emptyNSFlags(types []string) (uint32, error) {
	var flags uint32
	for _, t := range types {
		f, ok := nsCloneFlags[t]
		if !ok {
			return 0, fmt.Errorf("--empty-ns %q: not a namespace type", t)
		}
		if t != "network" {
			return 0, fmt.Errorf("--empty-ns %q: CRIU can leave only the network namespace empty", t)
		}
		flags |= f
	}
	return flags, nil
}

// freezerDir is the cgroup CRIU freezes the container with, instead of
// stopping each task with ptrace.
func freezerDir(paths map[string]string) string {
	if dir, ok := cgroupfs.V2Dir(paths); ok {
		return dir
	}
	for h, dir := range paths {
		for _, c := range strings.Split(h, ",") {
			if c == "freezer" {
				return dir
			}
		}
	}
	return ""
}

// dumpMounts names the container's external mounts after their mount
// point, the key a restore maps back to a host path.
func (c subject) dumpMounts() ([]checkpoint.ExtMount, error) {
	cfg := c.Config()
	var ext []checkpoint.ExtMount
	for _, m := range externalMounts(cfg, c.CgroupPaths()) {
		ext = append(ext, checkpoint.ExtMount{Key: m.Destination, Val: m.Destination})
	}
	info, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", c.Pid()))
	if err != nil {
		return nil, fmt.Errorf("reading the container's mounts: %w", err)
	}
	tmpfs := tmpfsMountPoints(info)
	rebuilt, err := rebuiltTmpfsMounts(c.StateDir(), cfg, c.CgroupPaths(), c.Pid(), tmpfs)
	if err != nil {
		return nil, err
	}
	ext = append(ext, rebuilt...)
	for _, p := range cfg.MaskedPaths {
		fi, err := os.Stat(fmt.Sprintf("/proc/%d/root%s", c.Pid(), p))
		switch {
		case os.IsNotExist(err):
			continue // nothing to mask
		case err != nil:
			return nil, fmt.Errorf("checking masked path %s: %w", p, err)
		case !fi.IsDir():
			ext = append(ext, checkpoint.ExtMount{Key: p, Val: "/dev/null"})
		case tmpfs[p]:
			// An empty read-only tmpfs: CRIU would tar and gzip it on the
			// dump and untar it on the restore (6 and 3.5 ms each here);
			// the restore binds an empty read-only tmpfs of lkc's instead.
			ext = append(ext, checkpoint.ExtMount{Key: p, Val: maskedDirKey})
		}
	}
	return ext, nil
}

// maskedDirKey names the empty read-only tmpfs that masks a directory.
const maskedDirKey = "lkc-masked-dir"

// tmpfsMountPoints returns the mount points of tmpfs mounts in a
// mountinfo, whose fields are "id parent dev root point options
// [optional...] - fstype source super-options".
func tmpfsMountPoints(mountinfo []byte) map[string]bool {
	points := map[string]bool{}
	for _, line := range strings.Split(string(mountinfo), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f := strings.Fields(pre)
		if ok && len(f) >= 5 && strings.HasPrefix(post, "tmpfs ") {
			points[f[4]] = true
		}
	}
	return points
}

// restoreMounts maps the names dumpMounts gave back to host paths, for
// the container's (possibly new) cgroup paths; masked directories get
// maskedDir, an empty read-only tmpfs.
func restoreMounts(cfg *config.Config, cgPaths map[string]string, maskedDir string) []checkpoint.ExtMount {
	var ext []checkpoint.ExtMount
	for _, m := range externalMounts(cfg, cgPaths) {
		ext = append(ext, checkpoint.ExtMount{Key: m.Destination, Val: m.Source})
	}
	if len(cfg.MaskedPaths) > 0 {
		ext = append(ext, checkpoint.ExtMount{Key: "/dev/null", Val: "/dev/null"},
			checkpoint.ExtMount{Key: maskedDirKey, Val: maskedDir})
	}
	return ext
}

// externalMounts lists the mounts of cfg whose source is on the host: bind
// mounts, the device nodes bound from the host's in a user namespace
// (mount.BoundDevices), and the container's cgroup directories when they
// are bound in (without a cgroup namespace of its own, see
// internal/mount/cgroup.go).
func externalMounts(cfg *config.Config, cgPaths map[string]string) []config.Mount {
	var out []config.Mount
	for _, d := range mount.BoundDevices(cfg) {
		out = append(out, config.Mount{Source: d.Path, Destination: d.Path, Type: "bind"})
	}
	for _, m := range cfg.Mounts {
		switch {
		case m.Type == "bind":
			out = append(out, m)
		case m.Type == "cgroup" || m.Type == "cgroup2":
			if realCgroupMounts(cfg) {
				continue // CRIU dumps them itself
			}
			if dir, ok := cgroupfs.V2Dir(cgPaths); ok {
				out = append(out, config.Mount{Source: dir, Destination: m.Destination})
				continue
			}
			for h, dir := range cgPaths {
				out = append(out, config.Mount{Source: dir, Destination: filepath.Join(m.Destination, h)})
			}
		}
	}
	return out
}

// checkNotIDMapped refuses a container with an idmapped mount: CRIU
// would restore it as a plain bind, its files' owners unmapped.
func checkNotIDMapped(cfg *config.Config) error {
	for i, m := range cfg.Mounts {
		if m.IDMapping != nil {
			return fmt.Errorf("%w: mounts[%d] %s is an idmapped mount, which CRIU would restore as a plain bind", ErrNotSupported, i, m.Destination)
		}
	}
	return nil
}

// realCgroupMounts says whether the container's cgroup view is made of
// cgroup filesystems (in its own cgroup namespace, without a user
// namespace, which may not mount v1) rather than binds of host directories
// (internal/mount/cgroup.go).
func realCgroupMounts(cfg *config.Config) bool {
	return cfg.NewNamespace("cgroup") && !cfg.NewNamespace("user")
}

// extNSKey is the name under which a joined namespace is recorded, as runc
// names them, so the images stay interchangeable.
func extNSKey(typ string) string {
	if typ == "network" {
		return "extRootNetNS"
	}
	return "extRootPidNS"
}

// externalNamespaces declares the network and pid namespaces the container
// joined by path: CRIU leaves them out of the images and expects them back
// on restore.
func externalNamespaces(cfg *config.Config) ([]string, error) {
	var ext []string
	for _, ns := range cfg.Namespaces {
		if ns.Path == "" || (ns.Type != "network" && ns.Type != "pid") {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(ns.Path, &st); err != nil {
			return nil, fmt.Errorf("%s namespace %s: %w", ns.Type, ns.Path, err)
		}
		kind := map[string]string{"network": "net", "pid": "pid"}[ns.Type]
		ext = append(ext, fmt.Sprintf("%s[%d]:%s", kind, st.Ino, extNSKey(ns.Type)))
	}
	return ext, nil
}

// restoreNamespaces gives CRIU the namespaces the container joins: the
// external network and pid namespaces as inherited fds, the others to join.
// The returned files must stay open until CRIU is done.
func restoreNamespaces(cfg *config.Config, req *checkpoint.Request) ([]*os.File, error) {
	var files []*os.File
	for _, ns := range cfg.Namespaces {
		if ns.Path == "" {
			continue
		}
		switch ns.Type {
		case "network", "pid":
			f, err := os.Open(ns.Path)
			if err != nil {
				closeAll(files)
				return nil, fmt.Errorf("%s namespace to restore into: %w", ns.Type, err)
			}
			files = append(files, f)
			req.Opts.InheritFd = append(req.Opts.InheritFd, checkpoint.InheritFd{Key: extNSKey(ns.Type), Fd: req.AddFile(f)})
		case "cgroup":
			closeAll(files)
			return nil, fmt.Errorf("%w: CRIU cannot restore into a joined cgroup namespace (%s)", ErrNotSupported, ns.Path)
		default:
			req.Opts.JoinNS = append(req.Opts.JoinNS, checkpoint.JoinNS{NS: criuNSName(ns.Type), File: ns.Path})
		}
	}
	return files, nil
}

func criuNSName(typ string) string {
	if typ == "mount" {
		return "mnt"
	}
	if typ == "network" {
		return "net"
	}
	return typ
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// dumpControllers are the v1 controllers lkc manages for the container.
// CRIU dumps the whole subtree below each task's cgroup; in the hierarchies
// lkc leaves alone (name=systemd, the hybrid unified one) that is the host's
// root and everyone's cgroups, which a restore then tries to recreate. On
// v2 the container's own cgroup is the top: nil lets CRIU dump it all.
func dumpControllers(paths map[string]string) []string {
	if _, v2 := cgroupfs.V2Dir(paths); v2 {
		return nil
	}
	var out []string
	for h := range paths {
		out = append(out, strings.Split(h, ",")...)
	}
	sort.Strings(out)
	return out
}

// unmanagedCgroupRoots puts the restored tasks, in the hierarchies lkc
// does not manage (name=systemd, the hybrid host's unified one), where lkc
// itself is, as a created container's init would be. Left to CRIU, they go
// back to the paths in the images, which may since belong to someone else
// or be gone.
func unmanagedCgroupRoots(self []byte, paths map[string]string) []checkpoint.CgroupRoot {
	if _, v2 := cgroupfs.V2Dir(paths); v2 {
		return nil
	}
	var out []checkpoint.CgroupRoot
	for _, line := range strings.Split(string(self), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctrl := parts[1]
		if _, managed := paths[ctrl]; managed {
			continue
		}
		if ctrl == "" {
			ctrl = "unified" // what CRIU calls the cgroup2 mount of a v1 host
		}
		out = append(out, checkpoint.CgroupRoot{Ctrl: ctrl, Path: parts[2]})
	}
	return out
}

// cgroupRoots tells CRIU to restore the tasks into the container's new
// cgroup: each hierarchy's directory, relative to where it is mounted.
func cgroupRoots(paths map[string]string) []checkpoint.CgroupRoot {
	root := cgroups.DefaultHost.Root
	var out []checkpoint.CgroupRoot
	for h, dir := range paths {
		base := filepath.Join(root, h)
		if h == "" {
			base = root
		}
		rel, err := filepath.Rel(base, dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		out = append(out, checkpoint.CgroupRoot{Ctrl: h, Path: "/" + rel})
	}
	return out
}
