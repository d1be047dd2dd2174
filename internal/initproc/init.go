package initproc

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/console"
	"github.com/lkc-containers/lkc/internal/mount"
	"github.com/lkc-containers/lkc/internal/nsenter"
	"github.com/lkc-containers/lkc/internal/safeproc"
)

// Main runs `lkc init`. It returns only on failure, with the exit code.
func Main() int {
	fd, err := strconv.Atoi(os.Getenv(nsenter.SyncEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "lkc init: not started by lkc")
		return 1
	}
	unix.CloseOnExec(fd)
	for _, env := range []string{ConsoleEnv, SeccompEnv} {
		if sock, err := strconv.Atoi(os.Getenv(env)); err == nil {
			unix.CloseOnExec(sock) // no hook may inherit these sockets
		}
	}
	msg, err := recvMessage(fd)
	if err != nil {
		return fail(fd, err)
	}
	var p *prepared
	if msg.Exec {
		p, err = prepareExec(msg)
	} else {
		p, err = create(fd, msg)
	}
	if err != nil {
		return fail(fd, err)
	}
	if err := unix.Sendmsg(fd, []byte(Ready), nil, nil, 0); err != nil {
		return 1
	}
	if p.fifo != nil {
		if err := p.waitStart(); err != nil {
			fmt.Fprintf(os.Stderr, "lkc init: %v\n", err)
			return 1
		}
		if err := p.startHooks(); err != nil {
			p.failStart(err)
			return 1
		}
	}
	// Credentials, capabilities, keepcaps, no_new_privs and the seccomp
	// filter are per thread: set them on the thread that execs. (Locking
	// earlier would hand the P to this thread after every blocking call, at
	// a cost on the hot path.)
	runtime.LockOSThread()
	err = p.exec()
	if p.fifo == nil {
		// An exec's parent waits until the process has exec'd.
		return fail(fd, err)
	}
	p.failStart(err)
	return 127
}

// failStart reports a failure after init was released to start, which
// waits on the fifo for the exec and returns what init wrote there.
func (p *prepared) failStart(err error) {
	p.fifo.Write([]byte(err.Error()))
}

func fail(fd int, err error) int {
	text := strings.ReplaceAll(err.Error(), "\n", " ")
	_ = unix.Sendmsg(fd, []byte(ErrorPrefix+text), nil, nil, 0)
	return 1
}

// prepared is a process ready to exec: a created container's init, which
// waits on fifo to be started, or a process exec'd into a running one.
type prepared struct {
	c          *config.Config
	fifo       *os.File          // nil for exec
	plan       *nsenter.Prepared // the last steps, in C (plan.c)
	startState []byte            // what startContainer hooks read
	// seccompState is sent to the seccomp listener with the notify fd.
	seccompState []byte
	// proc is what writes to /proc go through (openProc); nil when the
	// process needs none.
	proc *safeproc.Root
}

// prepareExec readies a process that joins a running container.
func prepareExec(msg *Message) (*prepared, error) {
	proc, err := openProc(msg.Config)
	if err != nil {
		return nil, err
	}
	if err := setupProcess(msg.Config, false, proc); err != nil {
		return nil, err
	}
	p := &prepared{c: msg.Config, seccompState: msg.SeccompState, proc: proc}
	return p, p.check(msg.PreserveFDs)
}

// openProc opens the /proc that init's writes to procfs go through, when c
// asks for any: sysctls, oom_score_adj, an LSM label. A container's init
// opens it before it builds the container's tree, so it is the /proc of
// the mount namespace init started in (the caller's, copied), which no
// mount of the container's covers; a process exec'd into a container
// opens the container's, whose mounts safeproc's walks refuse to cross.
func openProc(c *config.Config) (*safeproc.Root, error) {
	p := &c.Process
	if len(c.Sysctl) == 0 && p.OOMScoreAdj == nil && p.ApparmorProfile == "" && p.SelinuxLabel == "" {
		return nil, nil
	}
	return safeproc.Open("/proc")
}

// check does, before init reports ready, the work and the checks of the
// exec step that can fail: the seccomp filter, the working directory,
// closing lkc's fds (all but preserve after stdio), resolving the
// executable, raising the hard limits, the environment, the scheduler and
// I/O priority (nsenter.Prepare), and whether the capabilities can be
// granted at all. Everything that can fail before the
// process runs fails create (or exec) this way, not start.
func (p *prepared) check(preserve int) error {
	proc := &p.c.Process
	plan, err := p.planFor(preserve)
	if err != nil {
		return err
	}
	if proc.Scheduler != nil || proc.IOPriority != nil {
		// Prepare sets them on this thread, per thread: it must be the
		// one that execs (Main locks it again there).
		runtime.LockOSThread()
	}
	if p.plan, err = nsenter.Prepare(plan); err != nil {
		return err
	}
	return checkCaps(proc.Capabilities)
}

// checkCaps fails if capset could not give the process caps from what
// init holds now, in its final user namespace (config.Grantable).
func checkCaps(caps *config.Capabilities) error {
	if caps == nil {
		return nil
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	permitted := uint64(data[0].Permitted) | uint64(data[1].Permitted)<<32
	inheritable := uint64(data[0].Inheritable) | uint64(data[1].Inheritable)<<32
	return caps.Grantable(permitted, inheritable)
}

// create builds the container around init; sync is the handshake socket.
func create(sync int, msg *Message) (*prepared, error) {
	c := msg.Config
	fifoFd, err := strconv.Atoi(os.Getenv(FifoEnv))
	if err != nil {
		return nil, fmt.Errorf("no exec fifo from the parent")
	}
	unix.CloseOnExec(fifoFd)
	fifo := os.NewFile(uintptr(fifoFd), "exec.fifo")
	if !msg.NoNewKeyring {
		// A keyring of its own, so the container cannot read the caller's keys.
		if _, err := unix.KeyctlJoinSessionKeyring("_ses." + c.ID); err != nil && err != unix.ENOSYS {
			return nil, fmt.Errorf("joining a new session keyring: %w", err)
		}
	}
	proc, err := openProc(c)
	if err != nil {
		return nil, err
	}
	if err := buildRoot(sync, msg, proc); err != nil {
		return nil, err
	}
	if err := setupProcess(c, true, proc); err != nil {
		return nil, err
	}
	p := &prepared{c: c, fifo: fifo, startState: msg.StartState, seccompState: msg.SeccompState, proc: proc}
	return p, p.check(msg.PreserveFDs)
}

// makeCwd creates the process's working directory when the image lacks
// it, as runc does (images with a WORKDIR rely on it). It runs after the
// pivot, before the root turns read-only: "/" is the container's root
// then, so neither ".." nor a symlink in the path leads out of it.
func makeCwd(cwd string) error {
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		return fmt.Errorf("creating process.cwd: %w", err)
	}
	return nil
}

// buildRoot gives the container its filesystem and runs createContainer
// hooks on the way. A mount namespace of its own gets the rootfs, mounts and
// pivot_root; the caller's namespace (none in config) the same mounts
// beneath the rootfs and a chroot; a joined one is the container's
// filesystem as it stands, and nothing is mounted in it (spec refuses the
// fields that would ask for it).
func buildRoot(sync int, msg *Message, proc *safeproc.Root) error {
	c := msg.Config
	if c.HasNamespace("mount") && !c.NewNamespace("mount") {
		if err := createHooks(sync, msg); err != nil {
			return err
		}
		return setupSystem(c, proc)
	}
	callerNS := !c.HasNamespace("mount")
	env := mount.Env{
		InUserNS:    c.HasNamespace("user"),
		CallerNS:    callerNS,
		NewCgroupNS: c.NewNamespace("cgroup"),
		CgroupPaths: msg.CgroupPaths,
		MadeAt:      msg.Detached,
	}
	var made map[int]*os.File
	env.Made = func() (map[int]*os.File, error) {
		var err error
		made, err = recvDetached(sync, msg.Detached)
		return made, err
	}
	err := mount.PrepareRoot(c, env)
	for _, f := range made {
		f.Close() // moved into the container, or unused: then dissolved
	}
	if err != nil {
		return err
	}
	if err := createHooks(sync, msg); err != nil {
		return err
	}
	if callerNS {
		err = mount.Chroot(c.Rootfs)
	} else {
		err = mount.PivotRoot(c.Rootfs, c.NoPivot)
	}
	if err != nil {
		return err
	}
	if err := setupSystem(c, proc); err != nil {
		return err
	}
	if err := makeCwd(c.Process.Cwd); err != nil {
		return err
	}
	return mount.FinishRoot(c)
}

// setupSystem sets what belongs to the container's namespaces: names, a
// new network namespace's lo, and sysctls (before /proc/sys turns
// read-only). A sysctl file acts on the namespaces of the process that
// opens it, whichever procfs it is on: proc, from openProc, is one.
func setupSystem(c *config.Config, proc *safeproc.Root) error {
	if c.Hostname != "" {
		if err := unix.Sethostname([]byte(c.Hostname)); err != nil {
			return fmt.Errorf("sethostname %q: %w", c.Hostname, err)
		}
	}
	if c.Domainname != "" {
		if err := unix.Setdomainname([]byte(c.Domainname)); err != nil {
			return fmt.Errorf("setdomainname %q: %w", c.Domainname, err)
		}
	}
	if c.NewNamespace("network") {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	for k, v := range c.Sysctl {
		if err := proc.WriteFile("sys/"+strings.ReplaceAll(k, ".", "/"), []byte(v)); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

// setupProcess sets what the process inherits: terminal (the container's
// /dev/console too, for its init), oom score and personality. The working
// directory, fds and rlimits are the plan's (check, exec).
func setupProcess(c *config.Config, isInit bool, proc *safeproc.Root) error {
	p := &c.Process
	if p.Terminal {
		if err := setupConsole(p, isInit); err != nil {
			return err
		}
	} else if isInit {
		// A session of its own, as runc gives it: CRIU refuses to dump a
		// container whose session leader is outside it.
		if _, err := unix.Setsid(); err != nil {
			return fmt.Errorf("setsid: %w", err)
		}
	}
	if p.OOMScoreAdj != nil {
		if err := proc.WriteFile("self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj))); err != nil {
			return fmt.Errorf("setting oom_score_adj %d: %w", *p.OOMScoreAdj, err)
		}
	}
	if c.Personality != nil {
		if _, _, errno := unix.RawSyscall(unix.SYS_PERSONALITY, uintptr(*c.Personality), 0, 0); errno != 0 {
			return fmt.Errorf("personality %#x: %w", *c.Personality, errno)
		}
	}
	return nil
}

func setupConsole(p *config.Process, bindDevConsole bool) error {
	sock, err := strconv.Atoi(os.Getenv(ConsoleEnv))
	if err != nil {
		return fmt.Errorf("process.terminal is set but no console socket was given")
	}
	defer unix.Close(sock)
	master, slave, err := console.OpenPty()
	if err != nil {
		return err
	}
	defer master.Close()
	defer slave.Close()
	if p.ConsoleHeight > 0 || p.ConsoleWidth > 0 {
		if err := console.SetSize(master, p.ConsoleHeight, p.ConsoleWidth); err != nil {
			return fmt.Errorf("setting console size: %w", err)
		}
	}
	if bindDevConsole {
		if err := mount.BindConsole(slave); err != nil {
			return fmt.Errorf("binding the terminal on /dev/console: %w", err)
		}
	}
	if err := console.SendFd(sock, master); err != nil {
		return err
	}
	for _, fd := range []int{0, 1, 2} {
		if err := unix.Dup3(int(slave.Fd()), fd, 0); err != nil {
			return fmt.Errorf("dup console to fd %d: %w", fd, err)
		}
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("making the console the controlling terminal: %w", err)
	}
	return nil
}

func (p *prepared) waitStart() error {
	var b [1]byte
	for {
		_, err := p.fifo.Read(b[:])
		if err == nil {
			return nil
		}
		if !isEINTR(err) {
			return fmt.Errorf("waiting for start: %w", err)
		}
	}
}

func isEINTR(err error) bool {
	pe, ok := err.(*os.PathError)
	return ok && pe.Err == unix.EINTR
}
