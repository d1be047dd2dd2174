package container

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/initproc"
	"github.com/lkc-containers/lkc/internal/nsenter"
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
}

// spawnInit starts `lkc init`, places it in its cgroup and namespaces, hands
// it its message and waits until it reports ready. It returns the pid of
// the process that goes on to exec.
func spawnInit(spec initSpec) (int, error) {
	exe, err := protectedSelf()
	if err != nil {
		return 0, err
	}
	defer exe.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("init socketpair: %w", err)
	}
	sock, child := fds[0], os.NewFile(uintptr(fds[1]), "init-sync")
	defer unix.Close(sock)
	defer child.Close()
	// The message may outgrow the default socket buffer.
	_ = unix.SetsockoptInt(sock, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20)
	cmd := &exec.Cmd{
		Path:   fmt.Sprintf("/proc/self/fd/%d", exe.Fd()),
		Args:   []string{"lkc", "init"},
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
	}
	if err := addFiles(cmd, spec, child); err != nil {
		return 0, err
	}
	for _, f := range cmd.ExtraFiles[spec.preserveFDs+1:] {
		defer f.Close()
	}
	tasks, cloneInto := spec.cg.Placement()
	if cloneInto != "" {
		dirfd, err := unix.Open(cloneInto, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, &os.PathError{Op: "open cgroup", Path: cloneInto, Err: err}
		}
		defer unix.Close(dirfd)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: dirfd}
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting lkc init: %w", err)
	}
	child.Close()
	spec.req.Cgroups = tasks
	pid, err := handshake(spec, cmd, sock)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, err
	}
	return pid, nil
}

// addFiles passes init its fds after the preserved ones: the handshake
// socket, the exec fifo, the console connection and the seccomp listener
// connection, named in its env.
func addFiles(cmd *exec.Cmd, spec initSpec, sync *os.File) error {
	for i := 0; i < spec.preserveFDs; i++ {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(3+i), "preserved"))
	}
	add := func(env string, f *os.File) {
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
		cmd.Env = append(cmd.Env, env+"="+strconv.Itoa(2+len(cmd.ExtraFiles)))
	}
	// Init is short-lived and serial: one P and no GC keep the Go runtime
	// from waking threads it does not need.
	cmd.Env = []string{"GOMAXPROCS=1", "GOGC=off"}
	add(nsenter.SyncEnv, sync)
	if spec.fifo != "" {
		// Opened here: a container root in a user namespace is an
		// unprivileged host uid that could not open it itself.
		f, err := os.OpenFile(spec.fifo, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("opening exec fifo: %w", err)
		}
		add(initproc.FifoEnv, f)
	}
	if spec.consoleConn != nil {
		add(initproc.ConsoleEnv, spec.consoleConn)
	}
	if spec.consoleSocket != "" {
		conn, err := dialConsole(spec.consoleSocket)
		if err != nil {
			closeFrom(cmd.ExtraFiles, spec.preserveFDs+1)
			return err
		}
		add(initproc.ConsoleEnv, conn)
	}
	if spec.seccompState != nil {
		conn, err := dialSeccomp(spec.msg.Config.Seccomp.ListenerPath)
		if err != nil {
			closeFrom(cmd.ExtraFiles, spec.preserveFDs+1)
			return err
		}
		add(initproc.SeccompEnv, conn)
	}
	return nil
}

func closeFrom(files []*os.File, first int) {
	for _, f := range files[first:] {
		f.Close()
	}
}

func handshake(spec initSpec, cmd *exec.Cmd, sock int) (int, error) {
	pid, err := nsenter.Run(sock, cmd.Process.Pid, spec.req, spec.writeMaps)
	if err != nil {
		return 0, err
	}
	if spec.req.Fork {
		// The intermediate process exits once the real one is forked.
		cmd.Wait()
	}
	if spec.hookState != nil {
		spec.msg.CreateState = spec.hookState(pid, Creating)
		spec.msg.StartState = spec.hookState(pid, Created)
	}
	if spec.seccompState != nil {
		spec.msg.SeccompState = spec.seccompState(pid)
	}
	msg, err := json.Marshal(&spec.msg)
	if err != nil {
		return 0, fmt.Errorf("encoding init config: %w", err)
	}
	if err := unix.Sendmsg(sock, msg, nil, nil, 0); err != nil {
		return 0, fmt.Errorf("sending config to init: %w", err)
	}
	reply, err := initproc.Recv(sock)
	if err == nil && string(reply) == initproc.HooksPoint {
		if err := runtimeHooksPoint(spec, sock); err != nil {
			return 0, err
		}
		reply, err = initproc.Recv(sock)
	}
	switch {
	case err != nil:
		return 0, fmt.Errorf("waiting for container init: %w", err)
	case len(reply) == 0:
		return 0, fmt.Errorf("container init exited during setup")
	case strings.HasPrefix(string(reply), initproc.ErrorPrefix):
		return 0, fmt.Errorf("container init: %s", reply[len(initproc.ErrorPrefix):])
	case string(reply) != initproc.Ready:
		return 0, fmt.Errorf("container init: unexpected message %q", reply)
	}
	return pid, nil
}

// runtimeHooksPoint runs the prestart and createRuntime hooks while init
// waits between its mounts and pivot_root, then lets it go on. After a
// failing hook init is left waiting, to be killed with the rest of create.
func runtimeHooksPoint(spec initSpec, sock int) error {
	if spec.hookState == nil {
		return fmt.Errorf("container init stopped for hooks the config does not have")
	}
	if err := runtimeHooks(&spec.msg.Config.Hooks, spec.msg.CreateState); err != nil {
		return err
	}
	if err := unix.Sendmsg(sock, []byte(initproc.HooksDone), nil, nil, 0); err != nil {
		return fmt.Errorf("resuming container init after the hooks: %w", err)
	}
	return nil
}

func dialConsole(path string) (*os.File, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("connecting to console socket: %w", err)
	}
	defer conn.Close()
	f, err := conn.(*net.UnixConn).File()
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return f, nil
}

// writeIDMaps writes the user namespace maps of init (pid) from outside.
func writeIDMaps(pid int, cfg *config.Config) error {
	write := func(file string, maps []config.IDMap) error {
		var b strings.Builder
		for _, m := range maps {
			fmt.Fprintf(&b, "%d %d %d\n", m.ContainerID, m.HostID, m.Size)
		}
		p := fmt.Sprintf("/proc/%d/%s", pid, file)
		if err := os.WriteFile(p, []byte(b.String()), 0); err != nil {
			return fmt.Errorf("writing %s: %w", file, err)
		}
		return nil
	}
	if err := write("uid_map", cfg.UIDMappings); err != nil {
		return err
	}
	return write("gid_map", cfg.GIDMappings)
}

// protectedSelf returns a handle to the lkc binary that init is executed
// from, such that a container reaching init through /proc can neither open
// the host's binary for writing nor keep a handle that could be reopened so
// (CVE-2019-5736 class): a detached, read-only bind mount of the binary, which
// costs two syscalls and leaves no mount anywhere; or, where the kernel lacks
// the new mount API, a sealed in-memory copy.
func protectedSelf() (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, "/proc/self/exe", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err == nil {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
		if err = unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err == nil {
			return os.NewFile(uintptr(fd), "lkc-ro"), nil
		}
		unix.Close(fd)
	}
	return sealedSelf()
}

// sealedSelf returns a sealed in-memory copy of the lkc binary.
func sealedSelf() (*os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("opening own binary: %w", err)
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("lkc", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	mem := os.NewFile(uintptr(fd), "lkc-memfd")
	fi, err := src.Stat()
	if err == nil {
		err = copyAll(fd, int(src.Fd()), fi.Size())
	}
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS,
			unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE)
	}
	if err != nil {
		mem.Close()
		return nil, fmt.Errorf("sealing a copy of the lkc binary: %w", err)
	}
	return mem, nil
}

func copyAll(dst, src int, size int64) error {
	for size > 0 {
		n, err := unix.Sendfile(dst, src, nil, int(size))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("short copy")
		}
		size -= int64(n)
	}
	return nil
}
