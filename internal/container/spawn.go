package container

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/initproc"
	"github.com/lkc-containers/lkc/internal/nsenter"
	"github.com/lkc-containers/lkc/internal/osthread"
	"github.com/lkc-containers/lkc/internal/steplog"
)

// initSpec is one `lkc init` to start: a container's init (create) or a
// process joining a running container (exec).
type initSpec struct {
	msg           initproc.Message
	req           nsenter.Request
	cg            cgroups.Manager
	preserveFDs   int
	consoleSocket string
	consoleConn   *os.File            // instead of consoleSocket: lkc serves the terminal itself
	fifo          string              // create only: the exec fifo init waits on
	writeMaps     func(pid int) error // create with a new user namespace
	// hookState, for a create with hooks, gives the OCI state the hooks
	// see for init's pid and a status.
	hookState func(pid int, status string) []byte
	// seccompState, when the filter has a notify listener, gives the state
	// init sends it for the pid of the process that execs.
	seccompState func(pid int) []byte
	// plan, for an exec the constructor finishes (req.Exec), replaces msg.
	plan *nsenter.Plan
	// closeBehind, for a foreground exec, closes lkc's binary in a
	// goroutine once the process has exec'd (initProc.closeAfterExec says
	// why).
	closeBehind bool
	// stdio, when set, replaces lkc's own stdin, stdout and stderr as the
	// process's (a foreground exec's pipes).
	stdio *[3]uintptr
	// intoFrozen, for an exec into a paused container, is called once the
	// process is in the container's frozen cgroup, where it waits for a
	// resume before it does anything (Exec lets go of the container's
	// lock, which resume takes). The process is moved there by pid from
	// here, before it gets its request: cloned into a frozen v2 cgroup it
	// would freeze before it execs lkc, and moving itself into a frozen
	// cgroup it would freeze before it says so.
	intoFrozen func()
	// awaitExec, for an exec, has spawnInit wait past ready until the
	// process has exec'd (waitExec), as runc's exec does, so that an
	// execve that fails (a file that is executable but no program, a
	// script whose interpreter is missing), or a process killed first,
	// fails the exec instead of a detached one reporting success, and
	// writing its pid file, for a process that never ran.
	awaitExec bool
	// initialCPUs, when set, are the CPUs init starts on, until it is in
	// its cgroup (an exec's execCPUAffinity.initial).
	initialCPUs *unix.CPUSet
}

// spawnInit starts `lkc init`, places it in its cgroup and namespaces, hands
// it its message and waits until it reports ready. It returns the pid of
// the process that goes on to exec.
func spawnInit(is initSpec) (int, error) {
	p, err := startInit(is, false)
	if err != nil {
		return 0, err
	}
	pid, err := p.place(&is)
	if err == nil {
		err = p.ready(&is)
	}
	if err == nil && is.awaitExec {
		err = p.waitExec()
	}
	if err != nil {
		p.abort()
		return 0, err
	}
	if is.closeBehind {
		go p.close()
	} else {
		p.close()
	}
	return pid, nil
}

// closeAfterExec closes p in the background once the process has exec'd
// or died: either closes its end of the handshake socket, which is
// close-on-exec. The last one to let go of the overlayfs lkc's binary was
// executed from waits for its teardown (docs/kernel.md): holding the binary
// until then makes that a goroutine of ours, while the process runs,
// instead of the process, in its execve.
func (p *initProc) closeAfterExec() {
	go func() {
		var buf [64]byte
		for {
			n, _, err := unix.Recvfrom(p.sock, buf[:], 0)
			if err != unix.EINTR && (err != nil || n == 0) {
				break
			}
		}
		p.close()
	}()
}

// initProc is a started `lkc init` whose handshake is under way.
type initProc struct {
	child    int  // the process started: the intermediate when the request forks
	sock     int  // our end of the handshake socket
	forked   int  // when the request forks: a pidfd of the process forked, or -1
	deferred bool // the cgroup move waits for sendCgroups
	tasks    []string
	// exe is the protected binary init was executed from. Closing its
	// mount fd waits for an RCU grace period (docs/kernel.md), so that
	// stays open until ready, which closes it while init builds the
	// container instead of while init waits for its cgroups; the file
	// stays open until close (see closeAfterExec).
	exe *selfExe
}

// startInit execs `lkc init` from the protected binary and sends it its
// namespace request, which it carries out while the caller goes on. With
// deferCgroups (see nsenter.Request.DeferCgroups) the cgroup need not exist
// yet; place moves init into it. The caller then calls place and ready, or
// abort.
//
// It uses syscall.ForkExec rather than os/exec: os.StartProcess probes once
// per process whether clone(CLONE_PIDFD) works by starting a throw-away
// child, which costs a fork, an exit and a wait on every container start.
func startInit(is initSpec, deferCgroups bool) (*initProc, error) {
	defer steplog.Step("create: start init")()
	exe, err := openSelfExe()
	if err != nil {
		return nil, err
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		exe.Close()
		return nil, fmt.Errorf("init socketpair: %w", err)
	}
	child := os.NewFile(uintptr(fds[1]), "init-sync")
	defer child.Close()
	// The message may outgrow the default socket buffer.
	_ = unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20)
	tasks, cloneInto := is.cg.Placement()
	if is.intoFrozen != nil {
		tasks, cloneInto = nil, ""
	}
	p := &initProc{sock: fds[0], forked: -1, tasks: tasks, deferred: deferCgroups, exe: exe}
	if p.child, err = execInit(is, exe, child, cloneInto); err != nil {
		p.close()
		return nil, err
	}
	if is.intoFrozen != nil {
		if err := cgroups.Enter(is.cg, p.child); err != nil {
			p.abort()
			return nil, err
		}
		is.intoFrozen()
	}
	req := is.req
	req.DeferCgroups = deferCgroups
	if !deferCgroups {
		req.Cgroups = tasks
	}
	if err := nsenter.Send(p.sock, req); err != nil {
		p.abort()
		return nil, err
	}
	return p, nil
}

// execInit starts `lkc init` with its fds; cloneInto, when set, is the v2
// cgroup directory to clone it into.
func execInit(is initSpec, exe *selfExe, sync *os.File, cloneInto string) (int, error) {
	files, env, opened, err := initFiles(is, sync)
	if err != nil {
		return 0, err
	}
	defer closeFiles(opened)
	attr := &syscall.ProcAttr{Env: env, Files: files, Sys: &syscall.SysProcAttr{}}
	if cloneInto != "" {
		dirfd, err := unix.Open(cloneInto, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, &os.PathError{Op: "open cgroup", Path: cloneInto, Err: err}
		}
		defer unix.Close(dirfd)
		attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = true, dirfd
	}
	path, done, err := exe.pathFor(files)
	if err != nil {
		return 0, err
	}
	defer done()
	pid, err := forkExecOn(is.initialCPUs, path, []string{"lkc", "init"}, attr)
	if err != nil {
		return 0, fmt.Errorf("starting lkc init: %w", err)
	}
	return pid, nil
}

// forkExecOn starts a process that runs on cpus from its first
// instruction: a child inherits the CPU affinity of the thread that forks
// it, so a thread of its own (which ends after, osthread.Spare) takes
// cpus and forks. Nil cpus fork from the caller's thread.
func forkExecOn(cpus *unix.CPUSet, path string, argv []string, attr *syscall.ProcAttr) (pid int, err error) {
	if cpus == nil {
		return syscall.ForkExec(path, argv, attr)
	}
	osthread.Spare(func() {
		if err = unix.SchedSetaffinity(0, cpus); err != nil {
			err = fmt.Errorf("sched_setaffinity (execCPUAffinity.initial): %w", err)
			return
		}
		pid, err = syscall.ForkExec(path, argv, attr)
	})
	return pid, err
}

// initFiles lists init's fds: stdio, the preserved ones, then the handshake
// socket, the exec fifo, the console connection and the seccomp listener
// connection, each named in env. opened are those to close once init has
// them.
func initFiles(is initSpec, sync *os.File) (files []uintptr, env []string, opened []*os.File, err error) {
	files = []uintptr{0, 1, 2}
	if is.stdio != nil {
		files = is.stdio[:]
	}
	for i := 0; i < is.preserveFDs; i++ {
		files = append(files, uintptr(3+i))
	}
	add := func(name string, f *os.File) {
		env = append(env, name+"="+strconv.Itoa(len(files)))
		files = append(files, f.Fd())
	}
	// Init is short-lived and serial: one P and no GC keep the Go runtime
	// from waking threads it does not need.
	env = []string{"GOMAXPROCS=1", "GOGC=off"}
	add(nsenter.SyncEnv, sync)
	defer func() {
		if err != nil {
			closeFiles(opened)
		}
	}()
	if is.fifo != "" {
		// Opened here: a container root in a user namespace is an
		// unprivileged host uid that could not open it itself.
		f, err := os.OpenFile(is.fifo, os.O_RDWR, 0)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("opening exec fifo: %w", err)
		}
		opened = append(opened, f)
		add(initproc.FifoEnv, f)
	}
	if is.consoleConn != nil {
		add(initproc.ConsoleEnv, is.consoleConn)
	}
	if is.consoleSocket != "" {
		conn, err := dialConsole(is.consoleSocket)
		if err != nil {
			return nil, nil, nil, err
		}
		opened = append(opened, conn)
		add(initproc.ConsoleEnv, conn)
	}
	if is.seccompState != nil {
		conn, err := dialSeccomp(is.msg.Config.Seccomp.ListenerPath)
		if err != nil {
			return nil, nil, nil, err
		}
		opened = append(opened, conn)
		add(initproc.SeccompEnv, conn)
	}
	return files, env, opened, nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// place waits for the pid that goes on into Go, moves it into its cgroup if
// that was deferred and sends init its message. It returns that pid; init
// then builds the container while the caller may record it, until ready.
func (p *initProc) place(is *initSpec) (int, error) {
	pid, err := nsenter.Await(p.sock, p.child, is.writeMaps)
	if err != nil {
		return 0, err
	}
	if is.req.Fork {
		// The intermediate process exits once the real one is forked. That
		// one is nobody's child here: abort kills it by a pidfd. It waits
		// for our message, so the pid is still its own.
		p.reap()
		if p.forked, err = unix.PidfdOpen(pid, 0); err != nil {
			p.forked = -1
			return 0, fmt.Errorf("init %d: pidfd_open: %w", pid, err)
		}
	}
	if p.deferred {
		if err := nsenter.SendCgroups(p.sock, p.tasks); err != nil {
			return 0, err
		}
	}
	if is.plan != nil {
		return pid, nsenter.SendPlan(p.sock, *is.plan)
	}
	if is.hookState != nil {
		is.msg.CreateState = is.hookState(pid, Creating)
		is.msg.StartState = is.hookState(pid, Created)
	}
	if is.seccompState != nil {
		is.msg.SeccompState = is.seccompState(pid)
	}
	msg, _ := is.msg.MarshalBinary()
	if err := initproc.Send(p.sock, msg); err != nil {
		return 0, fmt.Errorf("sending config to init (%d bytes): %w", len(msg), err)
	}
	return pid, nil
}

// reap waits for the started process (not init when the request forks).
func (p *initProc) reap() {
	if p.child == 0 {
		return
	}
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(p.child, &ws, 0, nil); err != unix.EINTR {
			break
		}
	}
	p.child = 0
}

// abort kills the started process and the one it forked, and closes the
// socket, which makes a forked init still waiting in the constructor exit
// too. It returns once the forked process has exited: a deferred cgroup
// move it was making is then over, and the caller kills what else is in
// the cgroup.
func (p *initProc) abort() {
	if p.child != 0 {
		unix.Kill(p.child, unix.SIGKILL)
		p.reap()
	}
	if p.forked >= 0 {
		if unix.PidfdSendSignal(p.forked, unix.SIGKILL, nil, 0) == nil {
			// A pidfd polls readable once its process has exited.
			fds := []unix.PollFd{{Fd: int32(p.forked), Events: unix.POLLIN}}
			for {
				if _, err := unix.Poll(fds, 10_000); err != unix.EINTR {
					break
				}
			}
			// An exec's process is ours once its intermediate exited (lkc
			// is its subreaper): reaped here, it leaves no zombie behind,
			// which cgroup v2 would go on listing in the container's
			// cgroup. Anyone else's child fails with ECHILD.
			unix.Waitid(unix.P_PIDFD, p.forked, nil, unix.WEXITED|unix.WNOHANG, nil)
		}
	}
	p.close()
}

// close closes what is left of the handshake; p may be nil.
func (p *initProc) close() {
	if p == nil {
		return
	}
	p.closeExe()
	if p.sock >= 0 {
		unix.Close(p.sock)
		p.sock = -1
	}
	if p.forked >= 0 {
		unix.Close(p.forked)
		p.forked = -1
	}
}

func (p *initProc) closeExe() {
	if p.exe != nil {
		p.exe.Close()
		p.exe = nil
	}
}

// ready waits until init reports the container built, running the
// runtime hooks when it stops for them. The wait is a blocking recv, not
// one parked in Go's poller: that took ~0.9 ms longer to see the reply
// here, and the goroutine that registers the forwarded signals meanwhile
// has a P of its own (startForwarding).
func (p *initProc) ready(is *initSpec) error {
	p.exe.closeMount()
	reply, err := initproc.Recv(p.sock)
	if err == nil && string(reply) == initproc.HooksPoint {
		if err := runtimeHooksPoint(*is, p.sock); err != nil {
			return err
		}
		reply, err = initproc.Recv(p.sock)
	}
	switch {
	case err != nil:
		return fmt.Errorf("waiting for container init: %w", err)
	case len(reply) == 0:
		return fmt.Errorf("container init exited during setup")
	case strings.HasPrefix(string(reply), initproc.ErrorPrefix):
		return fmt.Errorf("container init: %s", reply[len(initproc.ErrorPrefix):])
	case string(reply) != initproc.Ready:
		return fmt.Errorf("container init: unexpected message %q", reply)
	}
	return nil
}

// waitExec waits, after ready, until the process has exec'd or failed
// to: its end of the handshake socket is close-on-exec, and an exec's
// init reports a failing execve there. A process killed between ready and
// its execve (lkc's last steps: microseconds) closes the socket without a
// word too, which reads as exec'd, as in runc, whose exec takes the close
// of its sync socket for the exec.
func (p *initProc) waitExec() error {
	end := steplog.Step("exec: wait for the process's execve")
	reply, err := initproc.Recv(p.sock)
	end()
	switch {
	case err != nil:
		return fmt.Errorf("waiting for the process to exec: %w", err)
	case strings.HasPrefix(string(reply), initproc.ErrorPrefix):
		return fmt.Errorf("container init: %s", reply[len(initproc.ErrorPrefix):])
	case len(reply) != 0:
		return fmt.Errorf("container init: unexpected message %q", reply)
	}
	return nil
}

// runtimeHooksPoint runs the prestart and createRuntime hooks while init
// waits between its mounts and pivot_root, then lets it go on. After a
// failing hook init is left waiting, to be killed with the rest of create.
// Should init die meanwhile (a `delete --force` of the container being
// created kills it), the running hook is killed and create fails at once.
func runtimeHooksPoint(is initSpec, sock int) error {
	if is.hookState == nil {
		return fmt.Errorf("container init stopped for hooks the config does not have")
	}
	ctx, stop, err := whilePeerLives(sock)
	if err != nil {
		return err
	}
	end := steplog.Step("create: prestart and createRuntime hooks")
	err = runtimeHooks(ctx, &is.msg.Config.Hooks, is.msg.CreateState)
	end()
	killed := ctx.Err() != nil
	stop()
	if err != nil && killed {
		return fmt.Errorf("container init was killed while the runtime hooks ran (a delete --force?): %w", err)
	}
	if err != nil {
		return err
	}
	if err := unix.Sendmsg(sock, []byte(initproc.HooksDone), nil, nil, 0); err != nil {
		return fmt.Errorf("resuming container init after the hooks: %w", err)
	}
	return nil
}

func dialConsole(path string) (*os.File, error) {
	f, err := dialUnix(path)
	if err != nil {
		return nil, fmt.Errorf("connecting to console socket: %w", err)
	}
	return f, nil
}

// writeIDMaps writes the user namespace maps of init (pid) from outside.
func writeIDMaps(pid int, cfg *config.Config) error {
	write := func(file string, maps []config.IDMap) error {
		p := fmt.Sprintf("/proc/%d/%s", pid, file)
		if err := os.WriteFile(p, []byte(config.IDMapLines(maps)), 0); err != nil {
			return fmt.Errorf("writing %s: %w", file, err)
		}
		return nil
	}
	if err := write("uid_map", cfg.UIDMappings); err != nil {
		return err
	}
	return write("gid_map", cfg.GIDMappings)
}
