package fdstore

import (
	"encoding/json"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// WorkerArgs are the arguments (after the program name) that start a
// worker; the worker finds its holder connection on fd 3 and, with
// --ready (the first worker of a started daemon), the readiness pipe on
// fd 4. An upgrade's new worker gets --predecessor=PID, the old worker
// that serves until the new one is ready and then drains.
var WorkerArgs = []string{"daemon", "--worker"}

// HolderArgs are the arguments that start a holder; a holder started by a
// worker gets --resume naming that worker.
var HolderArgs = []string{"daemon", "--holder"}

// spawn starts a worker of the holder's own binary with a new socketpair.
func (h *Holder) spawn() (*worker, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(pair[0]), "worker"), os.NewFile(uintptr(pair[1]), "holder")
	defer theirs.Close()
	defer mine.Close()
	files := []*os.File{os.Stdin, os.Stdout, os.Stderr, theirs}
	h.mu.Lock()
	ready, old := h.Ready, h.old
	h.Ready = nil
	h.mu.Unlock()
	args := append([]string{"lkc"}, WorkerArgs...)
	args = append(args, fmt.Sprintf("--holder-pid=%d", os.Getpid()))
	if old != nil {
		args = append(args, fmt.Sprintf("--predecessor=%d", old.pid))
	}
	if ready != nil {
		files = append(files, ready)
		args = append(args, "--ready")
		defer ready.Close()
	}
	pidfd := -1
	p, err := os.StartProcess("/proc/self/exe", args, &os.ProcAttr{
		Files: files,
		Sys:   &syscall.SysProcAttr{PidFD: &pidfd},
	})
	if err != nil {
		return nil, fmt.Errorf("starting a worker: %w", err)
	}
	pid := p.Pid
	p.Release() // reaped through the pidfd
	c, err := newConn(mine)
	if err != nil {
		unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		return nil, err
	}
	h.Logf("started worker %d", pid)
	return &worker{pid: pid, pidfd: pidfd, conn: c}, nil
}

// waitPidfd blocks until the process behind pidfd has exited.
func waitPidfd(pidfd int) {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != unix.EINTR {
			return
		}
	}
}

// reap collects w's exit status when it is a child (a worker adopted from
// another holder is reaped by its own parent) and closes its pidfd.
func reap(w *worker) {
	var info unix.Siginfo
	unix.Waitid(unix.P_PIDFD, w.pidfd, &info, unix.WEXITED|unix.WNOHANG, nil)
	unix.Close(w.pidfd)
	w.conn.c.Close()
}

// Resume is what a holder hands to the next one: the fds it keeps (by
// number, open across the exec) and the worker it supervises.
type Resume struct {
	Fds map[string]int `json:"fds,omitempty"`
	// Worker is the running worker: its pid, its pidfd (-1: open one) and
	// the fd of its connection.
	Worker *ResumeWorker `json:"worker,omitempty"`
	// Upgrade says Worker asked for the upgrade and waits for its
	// successor to serve.
	Upgrade bool `json:"upgrade,omitempty"`
}

// ResumeWorker is a running worker handed over.
type ResumeWorker struct {
	Pid   int `json:"pid"`
	Pidfd int `json:"pidfd"`
	Conn  int `json:"conn"`
}

// ParseResume reads the --resume argument.
func ParseResume(s string) (*Resume, error) {
	var r Resume
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return nil, fmt.Errorf("--resume: %w", err)
	}
	return &r, nil
}

// resume takes over what st hands over.
func (h *Holder) resume(st *Resume) error {
	if st == nil {
		return nil
	}
	for k, fd := range st.Fds {
		unix.CloseOnExec(fd)
		h.fds[k] = fd
	}
	if st.Worker == nil {
		return nil
	}
	w, err := adopt(st.Worker)
	if err != nil {
		return err
	}
	if !st.Upgrade {
		h.Logf("supervising worker %d, which started this holder", w.pid)
		h.supervise(w)
		return nil
	}
	h.old = w
	go h.serve(w)
	go func() {
		waitPidfd(w.pidfd)
		h.exits <- w
	}()
	h.mu.Lock()
	h.worker = w // until its successor runs
	h.mu.Unlock()
	h.restart(0)
	return nil
}

// adopt opens what a running worker needs for supervision.
func adopt(r *ResumeWorker) (*worker, error) {
	unix.CloseOnExec(r.Conn)
	c, err := newConn(os.NewFile(uintptr(r.Conn), "worker"))
	if err != nil {
		return nil, err
	}
	unix.Close(r.Conn)
	pidfd := r.Pidfd
	if pidfd < 0 {
		pidfd, err = unix.PidfdOpen(r.Pid, 0)
		if err != nil {
			c.c.Close()
			return nil, fmt.Errorf("pidfd_open of worker %d: %w", r.Pid, err)
		}
	} else {
		unix.CloseOnExec(pidfd)
	}
	// A worker handed over has served (it ran a holder or asked for an
	// upgrade), so its death is no crash loop.
	return &worker{pid: r.Pid, pidfd: pidfd, conn: c, ready: true}, nil
}
