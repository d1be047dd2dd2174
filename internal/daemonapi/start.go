package daemonapi

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lkc-containers/lkc/internal/fdstore"
	"github.com/lkc-containers/lkc/internal/hostconf"
	"golang.org/x/sys/unix"
)

// StartTimeout bounds how long a starter waits for the daemon to serve.
// A start takes 50-150 ms even in the TCG VM, but one took 7.4 s there
// under load: the bound is for a daemon that hangs, not a slow one.
const StartTimeout = 30 * time.Second

// Ensure connects to the daemon of c, starting it first when it is not
// running, daemon.autostart allows it and starting it here is safe (see
// CanStart). It fails with one line naming what is missing otherwise.
func Ensure(c *hostconf.Conf) (*Client, error) { return EnsureCall(c, "", nil, nil) }

// EnsureCall is Ensure, then Call of op (unless ""), in one round trip
// when the daemon runs; like DialCall, it returns the client with op's
// error when only op fails.
func EnsureCall(c *hostconf.Conf, op string, in, out any) (*Client, error) {
	dir := c.DaemonDirectory()
	cl, err := DialCall(dir, op, in, out)
	if cl != nil || !errors.Is(err, ErrNotRunning) {
		return cl, err
	}
	hint := "(start it: lkc daemon --detach, or systemctl start lkc-daemon)"
	if !c.Autostart {
		return nil, fmt.Errorf("%w and daemon.autostart is false %s", ErrNotRunning, hint)
	}
	if why := CanStart(); why != "" {
		return nil, fmt.Errorf("%w and lkc does not start it from here: %s %s", ErrNotRunning, why, hint)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("starting lkc daemon: %w", err)
	}
	if err := Start(dir, exe, c.LogPath()); err != nil {
		return nil, err
	}
	return DialCall(dir, op, in, out)
}

// CanStart says why this process must not start the daemon ("" when it
// may): it must be root in the host's user, pid, mount and network
// namespaces, or the daemon would serve a world the containers are not
// in (and the proc connector works only in the initial network
// namespace). The initial user and pid namespaces have fixed inode
// numbers; mount and network are compared with PID 1's when PID 1 lets
// root read them (a guarded PID 1 hides them; then they are not checked).
func CanStart() string {
	if os.Geteuid() != 0 {
		return "not root"
	}
	for ns, ino := range initialNS {
		if readNS("self", ns) != ino {
			return "not in the host's " + ns + " namespace"
		}
	}
	for _, ns := range []string{"mnt", "net"} {
		if host := readNS("1", ns); host != "" && readNS("self", ns) != host {
			return "not in the host's " + ns + " namespace"
		}
	}
	return ""
}

// initialNS are the fixed links of the kernel's initial namespaces
// (PROC_USER_INIT_INO, PROC_PID_INIT_INO).
var initialNS = map[string]string{"user": "user:[4026531837]", "pid": "pid:[4026531836]"}

func readNS(pid, ns string) string {
	l, _ := os.Readlink("/proc/" + pid + "/ns/" + ns)
	return l
}

// Start starts a daemon in dir from exe, unless one serves there already,
// and returns once its worker serves. The start.lock flock makes racing
// starters start one daemon: the others find it serving. The holder runs
// in its own session with its output in logPath; its first worker writes
// "ok" on the pipe on the holder's fd 3 when it serves (no polling).
func Start(dir, exe, logPath string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating daemon directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "start.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("opening start.lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("locking start.lock: %w", err)
	}
	if cl, err := Dial(dir); err == nil {
		cl.Close()
		return nil
	}
	if systemdUnit(dir) {
		out, err := exec.Command("systemctl", "start", "lkc-daemon.service").CombinedOutput()
		if err != nil {
			return fmt.Errorf("systemctl start lkc-daemon.service: %v: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := fdstore.WaitHolderGone(dir, StartTimeout); err != nil {
		return fmt.Errorf("starting lkc daemon: %w", err)
	}
	return spawn(exe, logPath)
}

// spawn starts `exe daemon --holder` with a readiness pipe and waits on it.
func spawn(exe, logPath string) error {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return fmt.Errorf("creating log directory: %w", err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening daemon log: %w", err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(exe, "daemon", "--holder", "--ready-fd=3")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("starting lkc daemon: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait() // a running holder outlives us
		close(exited)
	}()
	r.SetReadDeadline(time.Now().Add(StartTimeout))
	buf := make([]byte, 4096)
	n, err := r.Read(buf)
	msg := strings.TrimSpace(string(buf[:n]))
	switch {
	case msg == "ok":
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		msg = fmt.Sprintf("it did not serve within %v", StartTimeout)
	case msg == "":
		msg = "it exited before it served"
	}
	// A holder whose first worker failed exits: wait for it, so that a
	// failed start has left nothing running when it is reported.
	select {
	case <-exited:
	case <-time.After(StartTimeout):
	}
	return fmt.Errorf("lkc daemon did not start: %s (log: %s)", msg, logPath)
}

// systemdUnit says whether systemd should start the daemon: PID 1 is
// systemd, the unit exists and dir is the unit's (the default). Then the
// daemon does not land in the caller's cgroup scope, whose stop would
// kill it.
func systemdUnit(dir string) bool {
	if dir != hostconf.Default().DaemonDir {
		return false
	}
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return false
	}
	for _, d := range []string{"/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(d, "lkc-daemon.service")); err == nil {
			return true
		}
	}
	return false
}
