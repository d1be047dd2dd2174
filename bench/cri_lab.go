package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
	"github.com/lkc-containers/lkc/internal/testutil/cri"
	"golang.org/x/sys/unix"
)

// criLab is one containerd with its CRI plugin on, started by the first
// cri variant that needs it and stopped when the last one is done: its
// directory under the benchmark's, a CNI bridge of its own, the pause and
// busybox images imported, and a cgroup (cgroup) holding containerd, its
// shims and the pods, whose CPU time the variants read.
type criLab struct {
	env      *Env
	build    cri.Build
	index    int
	handlers []cri.Handler
	images   *criImages
	refs     int
	failed   error // why the lab could not start, for its other variants
	dir      string
	daemon   *cri.Daemon
	grpcConn *grpc.ClientConn
	runtime  runtimeapi.RuntimeServiceClient // the CRI over grpcConn
	conf     string                          // crictl's config
	cgroup   string                          // absolute cgroup path, in every hierarchy
	acct     cpuCgroup                       // where the CPU time of cgroup is read
	bridge   string
	pods     []string // every pod id run, for the CNI cache sweep
	samples  map[string][]time.Duration
}

// criImages are the pause and busybox archives, made once per run.
type criImages struct{ pause, busybox string }

// acquire starts the lab unless it runs already, or failed to.
func (l *criLab) acquire() error {
	if l.failed != nil {
		return l.failed
	}
	if l.refs == 0 {
		if err := l.start(); err != nil {
			l.stop()
			l.failed = err
			return err
		}
	}
	l.refs++
	return nil
}

// release stops the lab when its last variant is done.
func (l *criLab) release() error {
	if l.refs--; l.refs > 0 {
		return nil
	}
	return l.stop()
}

func (l *criLab) start() error {
	for _, p := range l.build.Tools() {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("containerd %s: %s is not installed (scripts/install-cri-tools.sh builds the CRI tools): %w", l.build.Name, p, err)
		}
	}
	if err := l.makeImages(); err != nil {
		return err
	}
	base, err := ownCgroupBase()
	if err != nil {
		return err
	}
	l.dir = filepath.Join(l.env.Dir, "cri-"+strconv.Itoa(l.index))
	l.cgroup = filepath.Join(base, fmt.Sprintf("%s-cri-%d", l.env.IDPrefix, l.index))
	l.bridge = fmt.Sprintf("lkcbcri%d", l.index)
	l.samples = map[string][]time.Duration{}
	if l.acct, err = findCPUCgroup(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(l.dir, "cni"), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", l.dir, err)
	}
	conf := filepath.Join(l.dir, "cni", "10-lkc.conflist")
	if err := os.WriteFile(conf, []byte(cri.BridgeConfig(l.bridge)), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", conf, err)
	}
	b := l.build
	b.Config = func(dir string) string {
		if strings.HasPrefix(b.Name, "1.") {
			return cri.ConfigV2(dir, l.handlers)
		}
		return cri.ConfigV3(dir, l.handlers)
	}
	if l.daemon, err = cri.Start(b, l.dir); err != nil {
		return err
	}
	if err := l.acct.enter(l.cgroup+"/containerd", l.daemon.Pid()); err != nil {
		return err
	}
	if err := makeCgroupTrees(l.cgroup + "/pods"); err != nil {
		return err
	}
	if err := l.dialCRI(); err != nil {
		return err
	}
	l.conf = filepath.Join(l.dir, "crictl.yaml")
	yaml := fmt.Sprintf("runtime-endpoint: unix://%[1]s\nimage-endpoint: unix://%[1]s\ntimeout: 30\n", l.daemon.Addr)
	if err := os.WriteFile(l.conf, []byte(yaml), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", l.conf, err)
	}
	for _, archive := range []string{l.images.pause, l.images.busybox} {
		if err := l.daemon.Ctr(cri.Namespace, "images", "import", archive); err != nil {
			return err
		}
	}
	for _, ref := range []string{cri.PauseImage, cri.BusyboxImage} {
		if _, err := l.crictl(context.Background(), "inspecti", ref); err != nil {
			return fmt.Errorf("the CRI plugin does not list an imported image: %w", err)
		}
	}
	return nil
}

// makeImages writes the image archives unless another lab did.
func (l *criLab) makeImages() error {
	if l.images.pause != "" {
		return nil
	}
	dir := filepath.Join(l.env.Dir, "cri-images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	rootfs := filepath.Join(dir, "busybox.tar")
	if out, err := exec.Command("tar", "-C", l.env.Rootfs, "-cf", rootfs, ".").CombinedOutput(); err != nil {
		return fmt.Errorf("packing %s: %w: %s", l.env.Rootfs, err, out)
	}
	pause, busybox, err := cri.MakeImages(dir, filepath.Join("test", "clients", "testdata", "pause.c"), rootfs)
	if err != nil {
		return err
	}
	l.images.pause, l.images.busybox = pause, busybox
	return nil
}

// crictl runs crictl against the lab's containerd; its stdout is
// returned, its stderr is in the error.
func (l *criLab) crictl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, cri.Crictl, append([]string{"--config", l.conf}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("crictl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// stop removes the pods and images left, stops containerd (killing any
// shim left and unmounting what it left), and removes the bridge, the
// CNI cache of the lab's pods and the lab's cgroups. It returns what it
// found left behind or could not remove.
func (l *criLab) stop() error {
	var errs []error
	if l.grpcConn != nil {
		l.grpcConn.Close()
		l.grpcConn = nil
	}
	if l.daemon != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, _ := l.crictl(ctx, "pods", "-q")
		for _, p := range strings.Fields(out) {
			errs = append(errs, fmt.Errorf("pod %s left in containerd %s", p, l.build.Name))
			l.crictl(ctx, "stopp", p)
			l.crictl(ctx, "rmp", "-f", p)
		}
		l.daemon.Ctr(cri.Namespace, "images", "rm", cri.PauseImage, cri.BusyboxImage)
		for _, leak := range l.daemon.Stop() {
			errs = append(errs, errors.New(leak))
		}
		l.daemon = nil
	}
	if _, err := os.Stat("/sys/class/net/" + l.bridge); l.bridge != "" && err == nil {
		if out, err := exec.Command("ip", "link", "del", l.bridge).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip link del %s: %w: %s", l.bridge, err, out))
		}
	}
	for _, p := range l.pods {
		cached, _ := filepath.Glob("/var/lib/cni/results/*-" + p + "-*")
		for _, f := range cached {
			os.Remove(f)
		}
	}
	if l.cgroup != "" {
		errs = append(errs, removeCgroupTrees(l.cgroup)...)
	}
	if l.dir != "" {
		if err := os.RemoveAll(l.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeCgroupTrees removes path and the cgroups beneath it in every
// hierarchy, deepest first. Where a hierarchy is not mounted (the hybrid
// host's cgroup2 in the benchmark's namespace) a runtime may have made
// plain directories and files there instead: they go too.
func removeCgroupTrees(path string) []error {
	var dirs []string
	var errs []error
	hierarchies, _ := filepath.Glob(filepath.Join(cgroupRoot, "*"))
	for _, h := range append(hierarchies, cgroupRoot) {
		top := filepath.Join(h, path)
		if _, err := os.Stat(top); err != nil {
			continue
		}
		if !isCgroupFS(h) {
			if err := os.RemoveAll(top); err != nil {
				errs = append(errs, err)
			}
			for d := filepath.Dir(top); d != h && syscall.Rmdir(d) == nil; d = filepath.Dir(d) {
			}
			continue
		}
		dirs = append(dirs, top)
		dirs = append(dirs, findDirs(top, "", sweepMaxDepth)...)
	}
	slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
	for _, d := range slices.Compact(dirs) {
		if err := syscall.Rmdir(d); err != nil && !os.IsNotExist(err) {
			errs = append(errs, fmt.Errorf("removing cgroup %s: %w", d, err))
		}
	}
	return errs
}

// makeCgroupTrees creates path in every mounted cgroup hierarchy, as the
// kubelet makes a pod's cgroup before it asks for the sandbox: the
// runtimes then create only the containers' own, and each pod's start and
// teardown does not pay for the parent's creation and removal (lkc
// removes the parents it made; runc leaves them).
func makeCgroupTrees(path string) error {
	hierarchies := []string{cgroupRoot} // a pure v2 host's one
	if !isCgroupFS(cgroupRoot) {
		hierarchies, _ = filepath.Glob(filepath.Join(cgroupRoot, "*"))
	}
	for _, h := range hierarchies {
		if !isCgroupFS(h) {
			continue
		}
		if err := os.MkdirAll(filepath.Join(h, path), 0o755); err != nil {
			return fmt.Errorf("creating cgroup %s: %w", filepath.Join(h, path), err)
		}
	}
	return nil
}

// isCgroupFS reports whether dir is a mounted cgroup hierarchy.
func isCgroupFS(dir string) bool {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return false
	}
	return st.Type == unix.CGROUP_SUPER_MAGIC || st.Type == unix.CGROUP2_SUPER_MAGIC
}

// cpuCgroup is the hierarchy that accounts CPU time: cgroup v1's cpuacct,
// or the unified hierarchy of a pure v2 host.
type cpuCgroup struct {
	root string
	v2   bool
}

func findCPUCgroup() (cpuCgroup, error) {
	if v2, _ := cgroupfs.IsV2(cgroupRoot); v2 {
		return cpuCgroup{root: cgroupRoot, v2: true}, nil
	}
	matches, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", "cpuacct.usage"))
	if len(matches) == 0 {
		return cpuCgroup{}, errors.New("no cgroup hierarchy accounts CPU time (cpuacct.usage)")
	}
	return cpuCgroup{root: filepath.Dir(matches[0])}, nil
}

// enter creates path in the hierarchy and moves process pid into it.
func (c cpuCgroup) enter(path string, pid int) error {
	dir := filepath.Join(c.root, path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating cgroup %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("moving containerd into cgroup %s: %w", dir, err)
	}
	return nil
}

// usage is the CPU time of path and everything beneath it so far.
func (c cpuCgroup) usage(path string) (time.Duration, error) {
	dir := filepath.Join(c.root, path)
	if !c.v2 {
		data, err := os.ReadFile(filepath.Join(dir, "cpuacct.usage"))
		if err != nil {
			return 0, fmt.Errorf("reading CPU time: %w", err)
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		return time.Duration(ns), err
	}
	data, err := os.ReadFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return 0, fmt.Errorf("reading CPU time: %w", err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
			us, err := strconv.ParseInt(v, 10, 64)
			return time.Duration(us) * time.Microsecond, err
		}
	}
	return 0, fmt.Errorf("no usage_usec in %s/cpu.stat", dir)
}
