package fdstore

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// WatchHolder keeps a holder for the worker until ctx ends: when the
// holder (first holderPid, the worker's parent) dies, it starts a new
// holder of the worker's binary, which supervises this worker, and
// deposits every fd the worker keeps. logf records each step. The
// holder's pid is known (HolderPid) when it returns; the watch goes on in
// the background.
func (cl *Client) WatchHolder(ctx context.Context, holderPid int, logf func(string, ...any)) {
	pidfd, err := unix.PidfdOpen(holderPid, 0)
	if err == nil && os.Getppid() != holderPid {
		// The pid was reused after the holder died: not ours.
		unix.Close(pidfd)
		err = unix.ESRCH
	}
	cl.setPid(holderPid)
	go cl.watch(ctx, pidfd, err, logf)
}

// watch is WatchHolder's loop from the first holder's pidfd (or the error
// opening it).
func (cl *Client) watch(ctx context.Context, pidfd int, err error, logf func(string, ...any)) {
	for ctx.Err() == nil {
		if err == nil {
			waitPidfd(pidfd)
			var info unix.Siginfo
			unix.Waitid(unix.P_PIDFD, pidfd, &info, unix.WEXITED|unix.WNOHANG, nil)
			unix.Close(pidfd)
			if ctx.Err() != nil {
				return
			}
		}
		logf("the holder died; starting a new one")
		pidfd, err = cl.startHolder()
		if err != nil {
			logf("starting a holder: %v", err)
			return
		}
		logf("holder %d keeps every fd again", cl.HolderPid())
	}
}

// startHolder starts a holder that adopts this worker and gives it every
// fd; it returns the holder's pidfd.
func (cl *Client) startHolder() (int, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socketpair: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(pair[0]), "holder"), os.NewFile(uintptr(pair[1]), "worker")
	defer theirs.Close()
	st, _ := json.Marshal(&Resume{Worker: &ResumeWorker{Pid: os.Getpid(), Pidfd: -1, Conn: 3}})
	pidfd := -1
	args := append([]string{"lkc"}, HolderArgs...)
	p, err := os.StartProcess("/proc/self/exe", append(args, "--resume="+string(st)), &os.ProcAttr{
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr, theirs},
		Sys:   &syscall.SysProcAttr{Setsid: true, PidFD: &pidfd},
	})
	if err != nil {
		mine.Close()
		return -1, fmt.Errorf("starting a holder: %w", err)
	}
	pid := p.Pid
	p.Release()
	if err := cl.Redeposit(mine); err != nil {
		return pidfd, fmt.Errorf("depositing fds in holder %d: %w", pid, err)
	}
	cl.setPid(pid) // only now: status names a holder that keeps every fd
	return pidfd, nil
}

func (cl *Client) setPid(pid int) { cl.pid.Store(int64(pid)) }
