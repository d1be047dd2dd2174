package container

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/cleanup"
	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/initproc"
	"github.com/lkc-containers/lkc/internal/lsm"
	"github.com/lkc-containers/lkc/internal/mount"
	"github.com/lkc-containers/lkc/internal/nsenter"
	"github.com/lkc-containers/lkc/internal/state"
	"github.com/lkc-containers/lkc/internal/steplog"
)

// CreateOpts are the options of `lkc create`.
type CreateOpts struct {
	Root          string
	ID            string
	Config        *config.Config
	PidFile       string
	ConsoleSocket string
	consoleConn   *os.File // set by Run to serve the terminal itself
	NoNewKeyring  bool
	PreserveFDs   int
	// OwnBundle records that the caller made the bundle for this container
	// alone (`lkc serve`): deleting the container removes it.
	OwnBundle bool
	// Warn gets failures that must not fail the operation (poststart and
	// poststop hooks, when run or Run goes on to them); nil drops them.
	Warn func(error)
	// Served, when set, waits for the lkc daemon's answer to the
	// container's adopt, sent before create began, and adds what the
	// daemon serves to the config (its /proc view's mounts). Create calls
	// it just before it sends init the config, so that the daemon's work
	// overlaps init's start and the cgroup's; its error fails the create.
	// What it returns are the mounts the caller makes for init.
	Served func(cfg *config.Config) (Made, error)
	// startFacts is set by Create, whose container a separate `lkc start`
	// releases: create writes the facts its fast path checks.
	startFacts bool
}

// Made are mounts of the config that the caller makes for init
// (initproc.Message.Detached): the daemon's /proc view, cloned while
// create goes on, and the idmapped mounts. At lists their indexes in
// the config's mounts, Wait returns those made (detached, flags set), by
// index, once they are. Create sends them to init, which moves them into
// place, and closes them.
type Made struct {
	At   []int
	Wait func() map[int]*os.File
}

// send sends init on sock the mounts made, or none when sock is -1 (create
// failed), and closes them.
func (m Made) send(sock int) error {
	if len(m.At) == 0 {
		return nil
	}
	defer steplog.Step("create: send the mounts made")()
	made := m.Wait()
	defer func() {
		for _, f := range made {
			f.Close()
		}
	}()
	if sock < 0 {
		return nil
	}
	return initproc.SendDetached(sock, made)
}

// Create creates a container whose init waits for Start. On failure nothing
// is left: no state directory, cgroup, mount or process.
func Create(o CreateOpts) (err error) {
	o.startFacts = true
	c, err := create(o)
	if err == nil {
		c.close()
	}
	return err
}

func create(o CreateOpts) (_ *Container, err error) {
	defer steplog.Step("create")()
	cfg := o.Config
	if cfg.Process.Terminal && o.ConsoleSocket == "" && o.consoleConn == nil {
		return nil, fmt.Errorf("process.terminal is true: pass --console-socket (or set terminal to false)")
	}
	if err := nsenter.CheckJoins(cfg.Namespaces); err != nil {
		return nil, err
	}
	if err := lsm.Default.Check(&cfg.Process, cfg.MountLabel); err != nil {
		return nil, err
	}
	plan, err := networkPlan(cfg)
	if err != nil {
		return nil, err
	}
	pol, err := netPolicy(cfg)
	if err != nil {
		return nil, err
	}
	var undo cleanup.Stack
	b, err := NewBuild(o, &undo)
	if err != nil {
		undo.Run()
		return nil, err
	}
	dir, st, cg := b.dir, b.st, b.cg
	defer func() {
		if err != nil {
			if dir.Deleted() {
				err = fmt.Errorf("container %s was deleted while being created", o.ID)
			}
			b.Fail(&undo)
		}
	}()
	// Made once the id is claimed, as runc makes them: a failing one
	// fails a container, whose poststop hooks run.
	made, err := idmappedMounts(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			made.send(-1)
		}
	}()
	if !cfg.HasNamespace("mount") {
		if err := bindCallerRoot(dir, st, &undo); err != nil {
			return nil, err
		}
	}
	fifo := filepath.Join(dir.Path(), state.FifoName)
	if err := unix.Mkfifo(fifo, 0o622); err != nil {
		return nil, &os.PathError{Op: "mkfifo", Path: fifo, Err: err}
	}
	initOpts := o
	initOpts.Config = initConfig(cfg, plan)
	is := initOpts.initSpec(st, cg, fifo)
	// The pids limit waits until init is ready: it counts threads, and
	// init's Go runtime runs several while it builds the container, so a
	// limit of 1 to 3, which the process itself meets (its execve leaves
	// one thread), would keep init from starting a thread and crash it.
	// runc sets its limits at that point too. Init starts no thread after
	// it reports ready; those it has stay, as a limit never kills.
	p, err := startAround(is, &undo, func() error {
		defer steplog.Step("create: cgroup")()
		return b.CreateCgroup(cfg.Cgroup.Resources.PidsLimit != nil, &undo)
	})
	if err != nil {
		return nil, err
	}
	if o.Served != nil {
		served, err := o.Served(cfg)
		made = made.join(served)
		if err != nil {
			return nil, err
		}
		// init's copy of a networked container's config (initConfig)
		// must carry the view's mounts Served added too.
		is.msg.Config.Mounts = cfg.Mounts
	}
	is.msg.Detached = made.At
	end := steplog.Step("create: init namespaces and config")
	pid, err := p.place(&is)
	end()
	if err != nil {
		return nil, err
	}
	// Recorded while init builds the container: nobody reads the state
	// before create unlocks it, and a failure removes it.
	end = steplog.Step("create: record init")
	if !cfg.Process.Terminal {
		b.RecordStdio([3]*os.File{})
	}
	err = b.RecordInit(pid, o.PidFile)
	if err == nil && o.startFacts {
		writeStartFacts(dir, st, cg)
	}
	end()
	if err != nil {
		return nil, err
	}
	err = made.send(p.sock)
	made = Made{}
	if err != nil {
		return nil, err
	}
	// ADD runs while init builds the root filesystem: the namespace
	// exists, and the user's process waits on the exec fifo.
	if plan != nil {
		if err := attachNetwork(plan, cfg, dir.Path(), pid, &undo); err != nil {
			return nil, initFirst(p, &is, pid, err)
		}
	}
	if pol != nil {
		if err := enforcePolicy(pol, b, pid, &undo); err != nil {
			return nil, initFirst(p, &is, pid, err)
		}
	}
	end = steplog.Step("create: init rootfs and hooks")
	err = p.ready(&is)
	end()
	if err != nil {
		return nil, err
	}
	if err := b.SetPidsLimit(); err != nil {
		return nil, err
	}
	if err := dir.Created(); err != nil {
		return nil, err
	}
	return &Container{st: st, dir: dir, warn: o.Warn, init: p}, nil
}

// startAround starts init and has makeCgroup create its cgroup. Where init
// may enter the cgroup after its namespaces are made (v1, where it moves
// itself; on v2 it is cloned into the cgroup, which must exist), it starts
// first: its exec, unshare and fork run on another CPU meanwhile. undo gets
// what kills it, after what removes the cgroup so that it runs first: a
// deferred init joins the cgroup on its own time, and could do so after the
// cgroup was emptied.
func startAround(is initSpec, undo *cleanup.Stack, makeCgroup func() error) (p *initProc, err error) {
	tasks, cloneInto := is.cg.Placement()
	early := len(tasks) > 0 && cloneInto == "" && is.req.CanDeferCgroups()
	if early && steplog.On() {
		steplog.Printf("create: init starts before its cgroup is made, and joins it itself")
	}
	if early {
		if p, err = startInit(is, true); err != nil {
			return nil, err
		}
	}
	err = makeCgroup()
	if err == nil && !early {
		p, err = startInit(is, false)
	}
	if p != nil {
		undo.Add(p.abort)
	}
	return p, err
}

// bindCallerRoot binds the rootfs of a container that shares its caller's
// mount namespace (mount.BindRootfs says why). It is made before init
// starts, which mounts beneath it, and recorded at once, so that a failure
// anywhere or a delete after a crash detaches it.
func bindCallerRoot(dir *state.Dir, st *state.State, undo *cleanup.Stack) error {
	id, err := mount.BindRootfs(st.Rootfs)
	if err != nil {
		return err
	}
	st.RootfsMount = id
	undo.Add(func() { mount.DetachRootfs(st.Rootfs, id) })
	return dir.Save(st)
}

// newState is the container's record before anything exists, with the
// manager of the cgroup it names.
func (o CreateOpts) newState() (*state.State, cgroups.Manager, error) {
	cfg := o.Config
	cg, err := cgroups.New(cgroups.DefaultHost, cfg.Cgroup.Path)
	if err != nil {
		return nil, nil, err
	}
	return &state.State{
		ID: o.ID, Bundle: cfg.Bundle, Rootfs: cfg.Rootfs, Created: time.Now().UTC(),
		Owner: owner(), CgroupPaths: cg.Paths(), Config: cfg, OwnedBundle: o.OwnBundle,
	}, cg, nil
}

// createCgroup records st and creates the cgroup with its limits; undo gets
// what removes them.
func createCgroup(o CreateOpts, dir *state.Dir, st *state.State, cg cgroups.Manager, undo *cleanup.Stack) error {
	// Recorded before anything exists, so a delete after a crash finds it all.
	if err := dir.Save(st); err != nil {
		return err
	}
	if err := cg.Create(); err != nil {
		// Remove only what Create made: a cgroup that already existed (say,
		// another container's, named by linux.cgroupsPath) is not ours to
		// kill or remove.
		cg.Destroy()
		return err
	}
	// Saved with init's pid, so delete removes them; the default
	// placement's lkc/ stays for the next container.
	if filepath.Dir(o.Config.Cgroup.Path) != config.DefaultCgroupParent {
		st.CgroupParents = cg.Parents()
	}
	undo.Add(func() { cgroups.KillAll(cg); cg.Destroy() })
	if err := cg.Set(&o.Config.Cgroup.Resources); err != nil {
		return err
	}
	for _, w := range cgroups.Ignored(cg, &o.Config.Cgroup.Resources) {
		if o.Warn != nil {
			o.Warn(w)
		}
	}
	return nil
}

func (o CreateOpts) initSpec(st *state.State, cg cgroups.Manager, fifo string) initSpec {
	cfg := o.Config
	return initSpec{
		msg: initproc.Message{
			Config: cfg, CgroupPaths: cg.Paths(),
			PreserveFDs: o.PreserveFDs, NoNewKeyring: o.NoNewKeyring,
		},
		req:           nsenter.ForContainer(cfg),
		cg:            cg,
		preserveFDs:   o.PreserveFDs,
		consoleSocket: o.ConsoleSocket,
		consoleConn:   o.consoleConn,
		fifo:          fifo,
		writeMaps:     func(pid int) error { return writeIDMaps(pid, cfg) },
		hookState:     createHookState(st),
		seccompState: seccompListener(cfg.Seccomp, func(pid int) OCIState {
			return newOCIState(st, Creating, pid)
		}),
	}
}

// recordInit records init's identity and writes the pid file.
func recordInit(dir *state.Dir, st *state.State, pid int, pidFile string) error {
	st.InitPid = pid
	var err error
	if st.InitStart, err = state.StartTime(pid); err != nil {
		return fmt.Errorf("reading init start time: %w", err)
	}
	if err := dir.Save(st); err != nil {
		return err
	}
	if pidFile != "" {
		return writePidFile(pidFile, pid)
	}
	return nil
}

// writeStartFacts writes what the constructor's `lkc start` checks
// (nsenter.StartFacts) for a container whose start has nothing else to do:
// no poststart hooks, which Go runs. It is only a fast path, so a failure
// to write it is not create's: without the file (or with a part of it,
// which lacks the final newline) the Go CLI does the start.
func writeStartFacts(dir *state.Dir, st *state.State, cg cgroups.Manager) {
	freezer := cg.FreezerFile()
	if len(st.Config.Hooks.Poststart) > 0 || strings.ContainsRune(freezer, '\n') {
		return
	}
	line := fmt.Sprintf("%d %d %s\n", st.InitPid, st.InitStart, freezer)
	os.WriteFile(filepath.Join(dir.Path(), nsenter.StartFacts), []byte(line), 0o600)
}

// createHookState gives the state the create hooks see for init's pid, or
// nil when the config has none of them.
func createHookState(st *state.State) func(pid int, status string) []byte {
	if !hasCreateHooks(&st.Config.Hooks) {
		return nil
	}
	return func(pid int, status string) []byte { return hookState(newOCIState(st, status, pid)) }
}

func owner() string {
	if u, err := user.LookupId(strconv.Itoa(os.Getuid())); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}

// writePidFile writes pid atomically, as containerd and conmon read it.
func writePidFile(path string, pid int) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("writing pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing pid file: %w", err)
	}
	return nil
}

// withoutPidsLimit is cfg with no pids limit.
func withoutPidsLimit(cfg *config.Config) *config.Config {
	c := *cfg
	c.Cgroup.Resources.PidsLimit = nil
	return &c
}

// initFirst returns the error init reported if init is already gone when
// a step beside it fails (its createContainer hook failed, say, while ADD
// pinned its network namespace, which then no longer existed): that is
// the cause, the step's error only its echo. With init alive, err stands.
func initFirst(p *initProc, is *initSpec, pid int, err error) error {
	if start, serr := state.StartTime(pid); serr == nil && state.Alive(pid, start) {
		return err
	}
	if ierr := p.ready(is); ierr != nil {
		return ierr
	}
	return err
}
