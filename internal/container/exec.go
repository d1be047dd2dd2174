package container

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/initproc"
	"github.com/lkc-containers/lkc/internal/lsm"
	"github.com/lkc-containers/lkc/internal/nsenter"
	"github.com/lkc-containers/lkc/internal/seccomp"
)

// ExecOpts are the options of `lkc exec`.
type ExecOpts struct {
	Root    string
	ID      string
	Process config.Process
	// Change, when set, builds the process from the container's own (see
	// execDefaults) instead of taking Process.
	Change        func(*config.Process) error
	Detach        bool
	PidFile       string
	ConsoleSocket string
	consoleConn   *os.File    // set by Exec to serve the terminal itself
	pipes         *stdioPipes // set by Exec for a foreground process without a terminal
	PreserveFDs   int
	// Cgroup places the process in existing sub-cgroups of the container's
	// (controller -> relative path, "" = all; see cgroups.Sub); nil keeps
	// it in the container's cgroup.
	Cgroup map[string]string
	// IgnorePaused lets the process join a paused container, as runc's
	// --ignore-paused does: it waits frozen until the container is
	// resumed, and so does Exec, detached or not, until it has exec'd.
	// Without it a paused container is refused.
	IgnorePaused bool
	// Listener, when set, is asked for the seccomp profile the process
	// loads when the container's sends a notify fd (config: the
	// container's config); nil keeps the container's profile, as runc
	// does. The CLI has lkc daemon take a container back here whose
	// listener is the daemon's own agent.
	Listener func(id string, config *config.Config) (*config.Seccomp, error)
}

// Exec starts a process in a running (or created, or with IgnorePaused
// paused) container: in every one of its namespaces and its cgroup. It
// fails unless the process has exec'd, as runc's exec does. Detached, it
// returns then; otherwise it forwards signals and returns the process's
// exit code.
func Exec(o ExecOpts) (int, error) {
	c, err := load(o.Root, o.ID, false)
	if err != nil {
		return 0, err
	}
	if o.Change != nil {
		o.Process = c.execDefaults()
		err = o.Change(&o.Process)
	} else {
		inherit(&o.Process, &c.st.Config.Process)
	}
	if err == nil && o.Process.Terminal && o.ConsoleSocket == "" && o.Detach {
		err = fmt.Errorf("exec --tty --detach needs --console-socket: nobody would serve the terminal")
	}
	if err == nil {
		err = lsm.Default.Check(&o.Process, "")
	}
	if err != nil {
		c.close()
		return 0, err
	}
	term, err := newTerminal(o.Process.Terminal && o.ConsoleSocket == "")
	if err != nil {
		c.close()
		return 0, err
	}
	o.consoleConn = term.initEnd()
	if !o.Detach && !o.Process.Terminal {
		if o.pipes, err = newStdioPipes(pipeOwner(c.st.Config, &o.Process)); err != nil {
			c.close()
			term.close()
			return 0, err
		}
	}
	var sigs *forwarding
	if !o.Detach {
		sigs = startForwarding()
	}
	pid, err := c.spawnExec(o)
	c.close()
	if err == nil {
		err = term.attach()
	}
	if err != nil {
		sigs.stop()
		term.close()
		if o.pipes != nil {
			o.pipes.close()
		}
		return 0, err
	}
	if o.pipes != nil {
		o.pipes.start()
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, pid); err != nil {
			unix.Kill(pid, unix.SIGKILL)
			return 0, err
		}
	}
	if o.Detach {
		return 0, nil
	}
	sigs.wait()
	go forward(sigs.c, pid, term)
	code := waitInit(pid)
	term.close()
	if o.pipes != nil {
		o.pipes.finish()
	}
	return code, nil
}

func (c *Container) spawnExec(o ExecOpts) (int, error) {
	s := c.status()
	switch {
	case s == Paused && !o.IgnorePaused:
		return 0, fmt.Errorf("%w (use --ignore-paused to override)", wrongState(o.ID, "exec in", s))
	case s != Running && s != Created && s != Paused:
		return 0, wrongState(o.ID, "exec in", s)
	}
	// The container's seccomp filter applies to every process in it.
	// Asked before lkc becomes a subreaper: a daemon the CLI starts here
	// is none of the exec's business.
	seccomp := c.st.Config.Seccomp
	if o.Listener != nil && seccomp != nil && seccomp.NotifyUsed() {
		var err error
		if seccomp, err = o.Listener(o.ID, c.st.Config); err != nil {
			return 0, err
		}
	}
	if !o.Detach {
		// The process is forked by an intermediate that exits: as a
		// subreaper we can wait for it.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return 0, fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
		}
	}
	types := make([]string, 0, len(c.st.Config.Namespaces))
	for _, ns := range c.st.Config.Namespaces {
		types = append(types, ns.Type)
	}
	cg := c.cgroup()
	if len(o.Cgroup) > 0 {
		sub, err := cgroups.Sub(cg, o.Cgroup)
		if err != nil {
			return 0, err
		}
		cg = sub
	}
	cg = withPolicyCgroup(cg, c.dir.Path())
	cfg := &config.Config{ID: o.ID, Process: o.Process, Seccomp: seccomp}
	req := nsenter.ForExec(c.st.InitPid, types)
	if !c.st.Config.HasNamespace("mount") {
		req.Chroot = fmt.Sprintf("/proc/%d/root", c.st.InitPid)
	}
	initialCPUs, err := execAffinity(o.Process.ExecCPUAffinity, &req)
	if err != nil {
		return 0, err
	}
	is := initSpec{
		initialCPUs:   initialCPUs,
		req:           req,
		cg:            cg,
		preserveFDs:   o.PreserveFDs,
		consoleSocket: o.ConsoleSocket,
		consoleConn:   o.consoleConn,
		closeBehind:   !o.Detach,
		awaitExec:     true,
	}
	if s == Paused {
		// The process waits frozen for a resume, which needs the lock.
		// A second close, by Exec, closes nothing.
		is.intoFrozen = c.close
	}
	if o.pipes != nil {
		fds := o.pipes.fds()
		is.stdio = &fds
	}
	plan, err := execPlan(cfg, o.PreserveFDs)
	if err != nil {
		return 0, err
	}
	if plan != nil {
		is.plan, is.req.Exec = plan, true
	} else {
		initState := c.ociState()
		is.msg = initproc.Message{Config: cfg, PreserveFDs: o.PreserveFDs, Exec: true}
		is.seccompState = seccompListener(cfg.Seccomp, func(int) OCIState {
			return initState
		})
	}
	return spawnInit(is)
}

// execAffinity applies execCPUAffinity to an exec: it returns the CPUs
// `lkc init` starts on (initial; nil: lkc's own) and asks the constructor
// for the final ones once it is in the cgroup. With an initial list but no
// final one, that is every CPU the cgroup allows, as runc does: since Linux
// 6.2 the kernel keeps a requested affinity across a cgroup move, so the
// process would stay on the initial CPUs.
func execAffinity(a *config.CPUAffinity, req *nsenter.Request) (*unix.CPUSet, error) {
	if a == nil {
		return nil, nil
	}
	req.Affinity = a.Final
	if a.Initial == "" {
		return nil, nil
	}
	if req.Affinity == "" {
		req.Affinity = nsenter.AllCPUs
	}
	ids, err := config.ParseIDList(a.Initial)
	if err != nil {
		return nil, fmt.Errorf("process.execCPUAffinity.initial: %w", err)
	}
	var set unix.CPUSet
	for cpu := range ids {
		set.Set(cpu)
	}
	return &set, nil
}

// execPlan returns the plan for the nsenter constructor to start the
// process itself, without Go's init, or nil when it needs Go's init: a
// terminal, rlimits, an oom score, or a seccomp notify listener.
func execPlan(cfg *config.Config, preserveFDs int) (*nsenter.Plan, error) {
	if !nsenter.Plannable(&cfg.Process) {
		return nil, nil
	}
	plan := &nsenter.Plan{Process: &cfg.Process, PreserveFDs: preserveFDs}
	if sc := cfg.Seccomp; sc != nil {
		if sc.NotifyUsed() || sc.WaitKillableRecv {
			return nil, nil
		}
		var err error
		if plan.Seccomp, plan.SeccompFlags, err = seccomp.Program(sc); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// inherit gives a process.json process what it leaves out of the
// container's process as runc's exec does: the oom score (not the
// caller's: a shim's low score would make the process the OOM killer's
// last choice), the scheduler, the I/O priority and the CPU affinity.
func inherit(p, from *config.Process) {
	if p.OOMScoreAdj == nil {
		p.OOMScoreAdj = from.OOMScoreAdj
	}
	if p.Scheduler == nil {
		p.Scheduler = from.Scheduler
	}
	if p.IOPriority == nil {
		p.IOPriority = from.IOPriority
	}
	if p.ExecCPUAffinity == nil {
		p.ExecCPUAffinity = from.ExecCPUAffinity
	}
}

// execDefaults returns the container's process, the base `lkc exec`
// changes with its flags: its env, cwd, user, capabilities, no_new_privs,
// rlimits, oom score, scheduler, I/O priority and CPU affinity, as runc's
// exec copies them. A process.json keeps its own rlimits (none means the
// caller's, as in runc) and inherits the rest (inherit).
func (c *Container) execDefaults() config.Process {
	p := c.st.Config.Process
	p.Terminal, p.ConsoleHeight, p.ConsoleWidth = false, 0, 0
	return p
}
