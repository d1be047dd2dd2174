package container

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/checkpoint"
	"github.com/lkc-containers/lkc/internal/cleanup"
	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/console"
	"github.com/lkc-containers/lkc/internal/mount"
	"github.com/lkc-containers/lkc/internal/spec"
	"github.com/lkc-containers/lkc/internal/state"
	"github.com/lkc-containers/lkc/internal/steplog"
)

// RestoreOpts are the options of `lkc restore` (runc's flags).
type RestoreOpts struct {
	Root, ID, Bundle string
	CRIU             string
	// Config, when not nil, is the bundle's config already converted (the
	// CLI has it); nil loads Bundle's config.json.
	Config *config.Config

	ImagePath, WorkPath, ParentPath string

	ConsoleSocket string
	PidFile       string
	Detach        bool
	NoSubreaper   bool
	NoPivot       bool

	TCPEstablished bool
	ExtUnixSk      bool
	ShellJob       bool
	FileLocks      bool
	LazyPages      bool
	EmptyNS        []string

	ManageCgroupsMode string
	// PageServer is the "host:port" of the source's page server; with
	// LazyPages, lkc starts CRIU's lazy-pages daemon against it itself.
	PageServer string
	// External are more CRIU --external entries: "veth[eth0]:vc1@br0"
	// re-creates a migrated container's veth with its peer on this host.
	External []string
	// NetworkIsolated restores a dump made with
	// CheckpointOpts.NetworkIsolated, which holds no network lock to
	// release. The container must be off the network until it runs (its
	// veths restored without a bridge, the caller connects them after).
	NetworkIsolated bool
	// Resources, when not nil, are the limits the container's cgroups get
	// and record instead of the config's (a migration brings the source's,
	// `lkc update`s included).
	Resources *config.Resources
	// FlatCgroups says every dumped task sat in the container's own
	// cgroups, none in a sub-cgroup: CRIU may then start in the new
	// container's cgroups and leave cgroups alone (checkpoint.Request's
	// Cgroups), as the limits are lkc's to set anyway.
	FlatCgroups bool
	// StatusFD, when not nil, gets one '\0' byte once the restored
	// container runs.
	StatusFD *os.File
	// Stdio, where not nil, replaces lkc's own fd 0, 1 or 2 as what the
	// restored tasks get in place of the pipes and outside files they had
	// (a migration reopens the container's /dev/null on the target).
	Stdio [3]*os.File
	// OwnBundle records that the caller made Bundle for this container
	// alone (`lkc serve`): deleting the container removes it.
	OwnBundle bool

	// Warn gets failures that must not fail the operation; nil drops them.
	Warn func(error)
	// Verbose is CheckpointOpts.Verbose for the restore.
	Verbose bool
	// Release, when not nil, is handed what unmounts the restore's staging
	// mounts (CRIU's view of the rootfs and its tmpfs sources) once the
	// container runs, for the caller to run later, when the time it takes
	// (an RCU grace period per unmount) no longer counts, and before it
	// exits; nil unmounts them before Restore returns. A failed restore
	// unmounts them itself.
	Release func(unmount func())
}

// Restore brings a checkpoint back as container ID; like Run, without
// Detach it waits and returns the exit code (128+N after signal N) and then
// deletes the container. A restore that fails leaves nothing behind: no
// state, cgroup, mount or process.
func Restore(o RestoreOpts) (int, error) {
	cfg, err := restoreConfig(&o)
	if err != nil {
		return 0, err
	}
	if cfg.Process.Terminal && o.ConsoleSocket == "" {
		return 0, fmt.Errorf("process.terminal is true: restoring needs --console-socket to hand the new terminal to")
	}
	cr, err := checkpoint.Find(o.CRIU)
	if err != nil {
		return 0, err
	}
	if !o.Detach && !o.NoSubreaper {
		// Restored as our child (CRIU's rst_sibling); being a subreaper
		// also keeps whatever it forks from escaping the wait.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return 0, fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
		}
	}
	var sigs chan os.Signal
	if !o.Detach {
		sigs = make(chan os.Signal, 64)
		signal.Notify(sigs, forwarded...)
		defer signal.Stop(sigs)
	}
	c, err := restore(cr, o, cfg)
	if err != nil {
		return 0, fmt.Errorf("restoring container %s: %w", o.ID, err)
	}
	c.close()
	if o.StatusFD != nil {
		o.StatusFD.Write([]byte{0})
	}
	if o.Detach {
		return 0, nil
	}
	go forward(sigs, c.st.InitPid, nil)
	code := waitInit(c.st.InitPid)
	return code, Delete(o.Root, o.ID, true, o.Warn)
}

func restoreConfig(o *RestoreOpts) (*config.Config, error) {
	if err := state.CheckID(o.ID); err != nil {
		return nil, err
	}
	if o.Config != nil {
		return o.Config, nil
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	s, err := spec.LoadBundle(bundle)
	if err != nil {
		return nil, err
	}
	cfg, err := spec.Convert(s, o.ID, bundle)
	if err != nil {
		return nil, err
	}
	cfg.NoPivot = o.NoPivot
	return cfg, nil
}

// restore creates the container's record and cgroup with its limits, as
// create does, then has CRIU restore the tasks into them.
func restore(cr *checkpoint.Criu, o RestoreOpts, cfg *config.Config) (_ *Container, err error) {
	defer steplog.Step("restore")()
	defer checkpoint.WarmPerfHooks()()
	dir, err := state.Create(o.Root, o.ID)
	if err != nil {
		return nil, err
	}
	var undo cleanup.Stack
	defer func() {
		if err != nil {
			undo.Run()
		}
	}()
	undo.Add(func() { dir.Remove() })
	// Registered after undo's deferred run: the staging mounts go first.
	var staging cleanup.Stack
	defer func() {
		if err == nil && o.Release != nil {
			o.Release(staging.Run)
		} else {
			staging.Run()
		}
	}()
	dirs, err := openDirs(o.ImagePath, o.WorkPath, false)
	if err != nil {
		return nil, err
	}
	defer dirs.close()
	// The lazy-pages daemon starts and reads the images, and the network
	// namespace is built, while lkc makes the cgroups and mounts.
	var lazy func() (*checkpoint.LazyPages, error)
	if o.LazyPages && o.PageServer != "" {
		if lazy, err = startLazyPages(cr, o, dirs, &undo); err != nil {
			return nil, err
		}
	}
	netnsBuilt, err := startNetns(dirs.imagePath, cfg, o.External, &undo)
	if err != nil {
		return nil, err
	}
	if o.Resources != nil {
		cfg.Cgroup.Resources = *o.Resources
	}
	co := CreateOpts{Root: o.Root, ID: o.ID, Config: cfg, Warn: o.Warn}
	st, cg, err := co.newState()
	if err != nil {
		return nil, err
	}
	st.OwnedBundle = o.OwnBundle
	// With FlatCgroups, CRIU starts in the v1 cgroups (on v2 it moves the
	// tasks itself). It then counts against the pids limit while it forks
	// the tasks: a container at its limit would not fit, so that limit is
	// set once the tasks are back.
	var startIn []string
	if tasks, cloneInto := cg.Placement(); o.FlatCgroups && cloneInto == "" {
		startIn = tasks
	}
	pids := cfg.Cgroup.Resources.PidsLimit
	deferPids := len(startIn) > 0 && pids != nil
	if deferPids {
		co.Config = withoutPidsLimit(cfg)
	}
	end := steplog.Step("restore: cgroup")
	err = createCgroup(co, dir, st, cg, &undo)
	end()
	if err != nil {
		return nil, err
	}
	end = steplog.Step("restore: mounts for criu")
	root, err := criuRoot(dir.Path(), cfg.Rootfs)
	if err != nil {
		return nil, err
	}
	staging.Add(func() { unmountRestoreDir(root) })
	masked, err := maskedDirSource(dir.Path())
	if err != nil {
		return nil, err
	}
	staging.Add(func() { unmountRestoreDir(masked) })
	tmpfsExt, err := tmpfsSources(dir.Path(), cfg, cg.Paths())
	staging.Add(func() { mount.ReleaseTmpfsStaging(dir.Path()) })
	if err != nil {
		return nil, err
	}
	unmountBinds, err := mount.PrepareRestore(cfg.Rootfs, cfg.Mounts)
	if err != nil {
		return nil, fmt.Errorf("preparing mount points: %w", err)
	}
	staging.Add(unmountBinds)
	end()
	req, err := restoreRequest(o, cfg, cg.Paths(), dirs, root, masked)
	if err != nil {
		return nil, err
	}
	req.Opts.ExtMounts = append(req.Opts.ExtMounts, tmpfsExt...)
	req.Cgroups, req.CgroupNS = startIn, cfg.NewNamespace("cgroup")
	files, err := restoreNamespaces(cfg, req)
	if err != nil {
		return nil, err
	}
	defer closeAll(files)
	if netnsBuilt != nil {
		net, err := netnsBuilt(req)
		if err != nil {
			return nil, err
		}
		defer net.Close()
	}
	if lazy != nil {
		// CRIU starts while the daemon finishes starting.
		if req.Worker, err = cr.StartWorker(req); err != nil {
			return nil, err
		}
		lp, err := lazy()
		if err == nil {
			err = lp.Ready()
		}
		if err != nil {
			req.Worker.Stop()
			return nil, err
		}
		req.Abort = lp.Failed()
	}
	pid, err := cr.Restore(req)
	if err != nil {
		return nil, err
	}
	if deferPids {
		if err := cg.Set(&config.Resources{PidsLimit: pids}); err != nil {
			return nil, fmt.Errorf("setting the pids limit: %w", err)
		}
	}
	if err := recordInit(dir, st, pid, o.PidFile); err != nil {
		return nil, err
	}
	if err := dir.Created(); err != nil {
		return nil, err
	}
	return &Container{st: st, dir: dir, warn: o.Warn}, nil
}

func restoreRequest(o RestoreOpts, cfg *config.Config, cgPaths map[string]string, d *imageDirs, root, maskedDir string) (*checkpoint.Request, error) {
	opts, err := criuOpts(d, o.ManageCgroupsMode, o.EmptyNS, o.Verbose)
	if err != nil {
		return nil, err
	}
	opts.LogFile, opts.Root, opts.ParentImg = "restore.log", root, o.ParentPath
	opts.RstSibling, opts.EvasiveDevices = true, true
	opts.TCPEstablished, opts.ExtUnixSk, opts.ShellJob = o.TCPEstablished, o.ExtUnixSk, o.ShellJob
	opts.FileLocks, opts.LazyPages, opts.OrphanPtsMaster = o.FileLocks, o.LazyPages, cfg.Process.Terminal
	opts.ExtMounts, opts.CgRoots = restoreMounts(cfg, cgPaths, maskedDir), cgroupRoots(cgPaths)
	opts.External = o.External
	if o.NetworkIsolated {
		opts.NetworkLock = checkpoint.LockSkip
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("reading own cgroup: %w", err)
	}
	opts.CgRoots = append(opts.CgRoots, unmanagedCgroupRoots(self, cgPaths)...)
	req := &checkpoint.Request{
		Opts: opts, Stdio: [3]*os.File{os.Stdin, os.Stdout, os.Stderr},
		Log: filepath.Join(d.workPath, "restore.log"),
	}
	for i, f := range o.Stdio {
		if f != nil {
			req.Stdio[i] = f
		}
	}
	if err := inheritStdio(req, d.imagePath); err != nil {
		return nil, err
	}
	req.Notify = func(script string, _ int, fd *os.File) error {
		if fd == nil {
			return nil
		}
		defer fd.Close()
		if script != "orphan-pts-master" {
			return nil
		}
		return sendConsole(o.ConsoleSocket, fd)
	}
	return req, nil
}

// inheritStdio makes the restored tasks use lkc's own fds 0-2 (CRIU's,
// which it inherits) where the container had pipes or files from outside,
// the way runc does for pipes: the old ones are gone, and whoever restores
// provides new ones.
func inheritStdio(req *checkpoint.Request, imageDir string) error {
	data, err := os.ReadFile(filepath.Join(imageDir, descriptorsFile))
	if os.IsNotExist(err) {
		return nil // not dumped by lkc or runc: nothing to map
	}
	if err != nil {
		return fmt.Errorf("reading the container's stdio record: %w", err)
	}
	var fds []string
	if err := json.Unmarshal(data, &fds); err != nil {
		return fmt.Errorf("decoding %s: %w", descriptorsFile, err)
	}
	for i, d := range fds {
		if (strings.HasPrefix(d, "pipe:") || strings.HasPrefix(d, "file[")) && i < 3 {
			req.Opts.InheritFd = append(req.Opts.InheritFd, checkpoint.InheritFd{Key: d, Fd: i})
		}
	}
	return nil
}

func sendConsole(path string, master *os.File) error {
	conn, err := dialConsole(path)
	if err != nil {
		return err
	}
	defer conn.Close()
	return console.SendFd(int(conn.Fd()), master)
}

// criuRoot bind-mounts the rootfs on a directory of the state dir: CRIU
// wants the root to be a mount point whose parent is not overmounted.
func criuRoot(stateDir, rootfs string) (string, error) {
	root := filepath.Join(stateDir, mount.StagingRoot)
	if err := os.Mkdir(root, 0o755); err != nil {
		return "", fmt.Errorf("creating CRIU root: %w", err)
	}
	if err := unix.Mount(rootfs, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		os.Remove(root)
		return "", fmt.Errorf("bind-mounting rootfs %s on %s: %w", rootfs, root, err)
	}
	return root, nil
}

// maskedDirSource mounts, in the state dir, the empty read-only tmpfs CRIU
// binds over each masked directory (see dumpMounts); the container's binds
// keep it once lkc detaches its own.
func maskedDirSource(stateDir string) (string, error) {
	dir := filepath.Join(stateDir, mount.StagingMasked)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating the masked-directory source: %w", err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_RDONLY, "size=0"); err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("mounting the masked-directory source: %w", err)
	}
	return dir, nil
}

// unmountRestoreDir detaches a mount lkc made in the state dir for CRIU
// and removes its directory.
func unmountRestoreDir(root string) {
	unix.Unmount(root, unix.MNT_DETACH)
	os.Remove(root)
}

// startLazyPages starts CRIU's lazy-pages daemon against the source's page
// server, for a restore with LazyPages, from another thread, and returns
// what waits for it to have started. The daemon goes on fetching pages
// after the restore returns and exits by itself once it has them all.
func startLazyPages(cr *checkpoint.Criu, o RestoreOpts, d *imageDirs, undo *cleanup.Stack) (func() (*checkpoint.LazyPages, error), error) {
	host, port, err := splitHostPort(o.PageServer)
	if err != nil {
		return nil, err
	}
	return cleanup.Background(func() (*checkpoint.LazyPages, error) {
		return cr.StartLazyPages(d.imagePath, d.workPath, host, port, criuLogLevel(o.Verbose))
	}, (*checkpoint.LazyPages).Stop, undo), nil
}

// withoutPidsLimit is cfg with no pids limit.
func withoutPidsLimit(cfg *config.Config) *config.Config {
	c := *cfg
	c.Cgroup.Resources.PidsLimit = nil
	return &c
}
