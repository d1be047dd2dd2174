package cr

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/checkpoint"
	"github.com/lkc-containers/lkc/internal/cleanup"
	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/container"
	"github.com/lkc-containers/lkc/internal/mount"
	"github.com/lkc-containers/lkc/internal/netns"
	"github.com/lkc-containers/lkc/internal/state"
	"github.com/lkc-containers/lkc/internal/steplog"
)

// restorePlan is one restore, built in steps: the container's record and
// cgroups made as create makes them (container.Build), the mounts CRIU
// needs staged in its state directory, CRIU's request, and CRIU's run.
// Each step pushes what undoes it on the one clean-up stack, the staging
// mounts as staging (cleanup.Stack.Always): a failure undoes everything,
// last first; a success keeps the container and releases the staging.
type restorePlan struct {
	o   RestoreOpts
	t   RestoreTuning
	cr  *checkpoint.Criu
	cfg *config.Config

	undo cleanup.Stack
	b    *container.Build
	dirs *imageDirs

	// ps is the connection to the source's page server the lazy-pages
	// daemon takes over, made first: nothing is made when it fails.
	ps *checkpoint.PageServerConn
	// Started before the cgroups and mounts, waited for by runCRIU.
	lazy  func() (*checkpoint.LazyPages, error)
	netns func(*checkpoint.Request) (*netns.Namespace, error)

	// startIn are the cgroups CRIU starts in (FlatCgroups on v1); the
	// pids limit then waits for the tasks (deferPids).
	startIn   []string
	deferPids bool

	root, masked string // staging: CRIU's root, masked directories' source
	// userns: the container has a user namespace of its own, whose root
	// is rootUID:rootGID on the host (restore_userns.go).
	userns           bool
	rootUID, rootGID int
	tmpfsExt         []checkpoint.ExtMount // staging: the rebuilt tmpfs sources

	// joinPolicy moves the restored tasks where their connect/bind policy
	// is attached, before they resume; nil without a policy.
	joinPolicy func() error

	// carried is what the container's view showed at the checkpoint,
	// read with the request; nil without.
	carried *state.Carried
	// initPid is the restored init's, from CRIU's setup-namespaces (its
	// pre-resume names none).
	initPid int
	// held says the restored tasks were frozen at CRIU's pre-resume
	// (freezeTasks).
	held bool

	req *checkpoint.Request
	// open holds what must stay open until CRIU is done: the image
	// directories, the namespaces the container joins, the carried netns.
	open []func()
	pid  int
}

// restore creates the container's record and cgroups with their limits,
// as create does, then has CRIU restore the tasks into them, and returns
// the restored init's pid.
func restore(cr *checkpoint.Criu, o RestoreOpts, t RestoreTuning, cfg *config.Config) (int, error) {
	defer steplog.Step("restore")()
	defer checkpoint.WarmPerfHooks()()
	if t.Resources != nil {
		cfg.Cgroup.Resources = *t.Resources
	}
	if len(t.Annotations) > 0 && cfg.Annotations == nil {
		cfg.Annotations = map[string]string{}
	}
	for k, v := range t.Annotations {
		cfg.Annotations[k] = v
	}
	p := &restorePlan{o: o, t: t, cr: cr, cfg: cfg}
	err := p.build()
	p.close()
	if err != nil {
		p.fail()
		return 0, err
	}
	return p.finish()
}

// build runs the steps in order; the first failure stops it.
func (p *restorePlan) build() error {
	for _, step := range []func() error{
		p.connectPageServer, p.claim, p.openImages, p.startHelpers, p.makeCgroup, p.policy, p.stage,
		p.request, p.namespaces, p.runCRIU, p.thawFrozenByDump, p.record,
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// connectPageServer connects to the page server of a lazy restore.
func (p *restorePlan) connectPageServer() (err error) {
	if !p.o.LazyPages || p.o.PageServer == "" {
		return nil
	}
	if p.ps, err = dialPageServer(p.o.PageServer); err == nil {
		p.open = append(p.open, p.ps.Close)
	}
	return err
}

// claim takes the id and starts the container's record.
func (p *restorePlan) claim() (err error) {
	co := container.CreateOpts{Root: p.o.Root, ID: p.o.ID, Config: p.cfg, Warn: p.o.Warn, OwnBundle: p.t.OwnBundle}
	p.b, err = container.NewBuild(co, &p.undo)
	return err
}

func (p *restorePlan) openImages() (err error) {
	if p.rootUID, p.rootGID, p.userns, err = mappedRoot(p.cfg); err != nil {
		return err
	}
	if p.dirs, err = openDirs(p.o.ImagePath, p.o.WorkPath, false); err != nil {
		return err
	}
	p.open = append(p.open, p.dirs.close)
	if !p.userns {
		return nil
	}
	revert, err := grantImages(p.b.StateDir(), p.dirs, p.rootUID, p.rootGID)
	if err == nil {
		p.open = append(p.open, revert)
	}
	return err
}

// startHelpers starts, on other threads, what runs beside the cgroups and
// mounts: the lazy-pages daemon reading the images, the network namespace
// being built.
func (p *restorePlan) startHelpers() (err error) {
	if p.ps != nil {
		p.lazy = startLazyPages(p.cr, p.o, p.dirs, p.ps, &p.undo)
	}
	p.netns, err = startCNI(p.dirs.imagePath, p.b.StateDir(), p.cfg, &p.undo)
	if p.netns != nil || err != nil {
		return err
	}
	p.netns, err = startNetns(p.dirs.imagePath, p.cfg, p.t.External, &p.undo)
	return err
}

// makeCgroup makes the container's cgroups. With FlatCgroups, CRIU starts
// in the v1 cgroups (on v2 it moves the tasks itself). With
// --manage-cgroups-mode ignore it must: CRIU then leaves the tasks where
// it runs, as runc, which moves CRIU into the container's cgroups, has
// them. CRIU counts against the pids limit while it forks the tasks: a
// container at its limit would not fit, so that limit is set once the
// tasks are back.
func (p *restorePlan) makeCgroup() error {
	ignore := p.o.ManageCgroupsMode == "ignore"
	tasks, cloneInto := p.b.Cgroup().Placement()
	if ignore && cloneInto != "" {
		return fmt.Errorf("--manage-cgroups-mode ignore: %w on cgroup v2: lkc cannot start CRIU in the container's cgroup, and CRIU would leave the tasks outside it", ErrNotSupported)
	}
	if (p.t.FlatCgroups || ignore) && cloneInto == "" {
		p.startIn = tasks
	}
	p.deferPids = len(p.startIn) > 0 && p.cfg.Cgroup.Resources.PidsLimit != nil
	defer steplog.Step("restore: cgroup")()
	return p.b.CreateCgroup(p.deferPids, &p.undo)
}

// policy attaches the config's connect/bind policy, if any, before the
// tasks come back.
func (p *restorePlan) policy() error {
	pol, err := container.NetPolicy(p.cfg)
	if pol == nil || err != nil {
		return err
	}
	p.joinPolicy, err = container.RestorePolicy(pol, p.b, &p.undo)
	return err
}

// stage makes the mounts CRIU restores through: the rootfs as a mount
// point, the masked directories' source, the rebuilt tmpfs sources, and the
// config's mount points.
func (p *restorePlan) stage() (err error) {
	defer steplog.Step("restore: mounts for criu")()
	dir := p.b.StateDir()
	if p.root, err = criuRoot(dir, p.cfg.Rootfs); err != nil {
		return err
	}
	root := p.root
	p.undo.Always(func() { unmountRestoreDir(root) })
	if p.masked, err = maskedDirSource(dir); err != nil {
		return err
	}
	masked := p.masked
	p.undo.Always(func() { unmountRestoreDir(masked) })
	p.tmpfsExt, err = tmpfsSources(dir, p.cfg, p.b.Cgroup().Paths())
	p.undo.Always(func() { mount.ReleaseTmpfsStaging(dir) })
	if err != nil {
		return err
	}
	unmountBinds, err := mount.PrepareRestore(p.cfg.Rootfs, p.cfg.Mounts)
	if err != nil {
		return fmt.Errorf("preparing mount points: %w", err)
	}
	p.undo.Always(unmountBinds)
	return nil
}

// namespaces hands CRIU the namespaces the container joins, and the
// network namespace the dump carried, once built.
func (p *restorePlan) namespaces() error {
	files, err := restoreNamespaces(p.cfg, p.req)
	p.open = append(p.open, func() { closeAll(files) })
	if err != nil || p.netns == nil {
		return err
	}
	net, err := p.netns(p.req)
	if err != nil {
		return err
	}
	p.open = append(p.open, func() { net.Close() })
	return nil
}

// runCRIU has CRIU restore the tasks; with lazy pages, CRIU starts while
// the daemon finishes starting.
func (p *restorePlan) runCRIU() (err error) {
	var lp *checkpoint.LazyPages
	if p.lazy != nil {
		if p.req.Worker, err = p.cr.StartWorker(p.req); err != nil {
			return err
		}
		lp, err = p.lazy()
		if err == nil {
			err = lp.Ready()
		}
		if err != nil {
			p.req.Worker.Stop()
			return err
		}
		p.req.Abort = lp.Failed()
	}
	p.pid, err = p.cr.Restore(p.req)
	if err == nil && lp != nil {
		// Best effort: at its usual priority the daemon only costs more
		// CPU (checkpoint.LazyPages.Background).
		lp.Background()
	}
	return err
}

// record sets the deferred pids limit and the init's I/O priority, and
// records the restored init.
func (p *restorePlan) record() error {
	if err := restoreIOPriority(p.cfg.Process.IOPriority, p.pid); err != nil {
		return err
	}
	if p.deferPids {
		if err := p.b.SetPidsLimit(); err != nil {
			return err
		}
	}
	if !p.cfg.Process.Terminal {
		p.b.RecordStdio(p.req.Stdio)
	}
	p.b.RecordCarried(p.carried)
	return p.b.RecordInit(p.pid, p.o.PidFile)
}

// finish marks the container complete and releases the staging mounts,
// or hands them to t.Release.
func (p *restorePlan) finish() (int, error) {
	pid, err := p.b.Finish()
	if err != nil {
		p.fail()
		return 0, err
	}
	staging := p.undo.Done()
	if p.t.Release != nil {
		p.t.Release(staging)
	} else {
		staging()
	}
	return pid, nil
}

// fail undoes the restore's steps; once the container's record exists,
// through container.Build.Fail, which runs the poststop hooks after.
func (p *restorePlan) fail() {
	if p.b == nil {
		p.undo.Run()
		return
	}
	p.b.Fail(&p.undo)
}

// close closes what CRIU needed open, whatever the outcome.
func (p *restorePlan) close() {
	for i := len(p.open) - 1; i >= 0; i-- {
		p.open[i]()
	}
}

// request builds CRIU's request.
func (p *restorePlan) request() (err error) {
	p.req, err = restoreRequest(p.o, p.t, p.cfg, p.b.Cgroup().Paths(), p.dirs, p.root, p.masked)
	if err != nil {
		return err
	}
	if p.carried, err = loadProcCarry(p.dirs.imagePath); err != nil {
		return err
	}
	p.req.Opts.ExtMounts = append(p.req.Opts.ExtMounts, p.tmpfsExt...)
	if p.userns {
		if err := stageForUserNS(p.b.StateDir(), p.req.Opts.ExtMounts, p.rootUID, p.rootGID); err != nil {
			return err
		}
		var opened []*os.File
		idmapStdio(p.req, p.cfg, &opened)
		p.open = append(p.open, func() { closeAll(opened) })
	}
	p.req.Cgroups, p.req.CgroupNS = p.startIn, p.cfg.NewNamespace("cgroup")
	notify := p.req.Notify
	p.req.Notify = func(script string, pid int, fd *os.File) error {
		if err := p.notified(script, pid); err != nil {
			if fd != nil {
				fd.Close()
			}
			return err
		}
		return notify(script, pid, fd)
	}
	return nil
}

// notified does what the restore adds at CRIU's notifications: the
// runtime hooks once the init's namespaces exist (CRIU's
// setup-namespaces, where runc runs them), the pid count the view goes on
// from (restore_pids.go) and the connect/bind policy before the tasks
// resume.
func (p *restorePlan) notified(script string, pid int) error {
	switch script {
	case "setup-namespaces":
		p.initPid = pid
		return p.b.RuntimeHooks(pid)
	case "pre-resume":
		err := p.preResume()
		if err != nil && !p.held {
			if ferr := p.freezeTasks(); ferr != nil {
				err = fmt.Errorf("%w; and so %w", err, ferr)
			}
		}
		return err
	}
	return nil
}

// PreResumeFailEnv, set in lkc's environment, makes every restore's
// pre-resume fail, for the test that the tasks then never run.
const PreResumeFailEnv = "LKC_TEST_PRE_RESUME_FAIL"

func (p *restorePlan) preResume() error {
	if os.Getenv(PreResumeFailEnv) != "" {
		return errors.New("pre-resume failed (" + PreResumeFailEnv + ")")
	}
	if err := resumePids(p.cfg, p.carried, p.initPid); err != nil {
		return err
	}
	if p.joinPolicy != nil {
		if err := p.joinPolicy(); err != nil {
			return err
		}
	}
	if !p.t.Frozen {
		return nil
	}
	return p.freezeTasks()
}

// freezeTasks freezes the restored container at CRIU's pre-resume, while
// CRIU still holds every task stopped under ptrace: the tasks detach into
// the frozen cgroup and run nothing, not even a signal handler, until it
// is thawed. That is how a container that is to come back paused
// (RestoreTuning.Frozen) comes back. (Left stopped by CRIU and continued
// once frozen, as before, each task's parent got a SIGCHLD for the stop
// and one for the continue, which it never had on the source.)
//
// It is also what a failed step of the pre-resume does: CRIU only logs a
// failed pre-resume and lets the tasks go (cr-restore.c), so they would
// run, without what failed, until the restore's undo killed them, and a
// migration's target would run the container beside its frozen source.
// Frozen, they never run before that kill. (Killed here instead, a task
// CRIU still traces stays a zombie only CRIU may reap while CRIU waits
// for the container's init, which waits for it: both hang.)
//
// A CRIU started in the container's v1 cgroups (startIn) sits in its
// freezer too, with its helpers: they leave it first.
func (p *restorePlan) freezeTasks() error {
	defer steplog.Step("restore: frozen while criu holds the tasks")()
	if len(p.startIn) > 0 {
		criu := p.req.CriuPid()
		pids := append([]int{criu}, checkpoint.Children(criu)...)
		if err := cgroups.ToOwnFreezer(cgroups.DefaultHost, pids); err != nil {
			return fmt.Errorf("moving criu out of the container's freezer cgroup: %w", err)
		}
	}
	if err := p.b.Cgroup().Freeze(); err != nil {
		return fmt.Errorf("freezing the restored container: %w", err)
	}
	p.held = true
	return nil
}

func restoreRequest(o RestoreOpts, t RestoreTuning, cfg *config.Config, cgPaths map[string]string, d *imageDirs, root, maskedDir string) (*checkpoint.Request, error) {
	opts, err := criuOpts(d, o.ManageCgroupsMode, o.EmptyNS, o.Verbose)
	if err != nil {
		return nil, err
	}
	opts.LogFile, opts.Root, opts.ParentImg = "restore.log", root, o.ParentPath
	opts.RstSibling, opts.EvasiveDevices = true, true
	opts.TCPEstablished, opts.ExtUnixSk, opts.ShellJob, opts.AutoDedup = o.TCPEstablished, o.ExtUnixSk, o.ShellJob, o.AutoDedup
	opts.FileLocks, opts.LazyPages, opts.OrphanPtsMaster = o.FileLocks, o.LazyPages, cfg.Process.Terminal
	opts.LSMProfile, opts.LSMMountContext = o.LSMProfile, o.LSMMountContext
	opts.ExtMounts, opts.CgRoots = restoreMounts(cfg, cgPaths, maskedDir), cgroupRoots(cgPaths)
	opts.External = t.External
	if t.NetworkIsolated {
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
	for i, f := range t.Stdio {
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
