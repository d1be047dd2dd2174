package container

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// stdioPipes stand between a foreground exec's process and the caller's
// stdio, as runc's do. The process gets pipes, never the caller's own files:
// given the caller's terminal it could push input into the operator's shell
// (TIOCSTI), given a file it could reopen it through /proc/self/fd with the
// rights of the host's path, not of the container.
type stdioPipes struct {
	child  [3]*os.File // the process's ends: stdin's read end, stdout's and stderr's write ends
	parent [3]*os.File // lkc's ends
	exited atomic.Bool
	copies sync.WaitGroup
}

// newStdioPipes makes the three pipes, their process ends owned by owner
// (the process's host uid and gid, so that it may reopen them as
// /dev/stdout), when it is known.
func newStdioPipes(owner *[2]int) (*stdioPipes, error) {
	p := &stdioPipes{}
	for i := range 3 {
		r, w, err := os.Pipe()
		if err != nil {
			p.close()
			return nil, fmt.Errorf("making the exec's stdio pipes: %w", err)
		}
		if i == 0 {
			p.child[i], p.parent[i] = r, w
		} else {
			p.child[i], p.parent[i] = w, r
		}
		if owner == nil {
			continue
		}
		if err := p.child[i].Chown(owner[0], owner[1]); err != nil {
			p.close()
			return nil, fmt.Errorf("chown the exec's stdio pipe to %d:%d: %w", owner[0], owner[1], err)
		}
	}
	return p, nil
}

// fds are the process's stdio for initSpec.stdio.
func (p *stdioPipes) fds() [3]uintptr {
	var fds [3]uintptr
	for i, f := range p.child {
		fds[i] = f.Fd()
	}
	return fds
}

// start closes lkc's copy of the process's ends, which the process now
// holds, and copies between the pipes and lkc's stdio.
func (p *stdioPipes) start() {
	for _, f := range p.child {
		f.Close()
	}
	go func() {
		io.Copy(p.parent[0], os.Stdin)
		p.parent[0].Close()
	}()
	p.copies.Add(2)
	go p.copyOut(os.Stdout, p.parent[1])
	go p.copyOut(os.Stderr, p.parent[2])
}

// finish, once the process has exited, copies what it wrote and returns.
// It does not wait for an end of file: a process the exec started in the
// background may hold the pipes open for as long as it lives.
func (p *stdioPipes) finish() {
	p.exited.Store(true)
	for _, f := range p.parent[1:] {
		f.SetReadDeadline(time.Now())
	}
	p.copies.Wait()
	p.close()
}

// copyOut copies src to dst until the end of file, or until the process
// has exited and src is empty.
func (p *stdioPipes) copyOut(dst, src *os.File) {
	defer p.copies.Done()
	rc, err := src.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 32<<10)
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			// Whether the process had exited is read before the pipe: an
			// empty pipe then means it holds nothing more. Read after, an
			// exit between the two (the process writing its last output
			// once the pipe was found empty) ended the copy without it.
			exited := p.exited.Load()
			n, rerr = readPipe(int(fd), buf)
			return rerr != unix.EAGAIN || exited
		})
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Woken by finish: what the process wrote may have come in
			// together with the deadline.
			rc.Control(func(fd uintptr) { drain(dst, int(fd), buf) })
		}
		return
	}
}

// readPipe reads lkc's end of a pipe (a test makes the process write and
// exit in the middle of a copy's read).
var readPipe = unix.Read

// drain copies from the non-blocking fd to dst until it is empty.
func drain(dst *os.File, fd int, buf []byte) {
	for {
		n, err := unix.Read(fd, buf)
		if n <= 0 || err != nil {
			return
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// close closes every end lkc still holds.
func (p *stdioPipes) close() {
	for _, f := range append(p.child[:], p.parent[:]...) {
		if f != nil {
			f.Close()
		}
	}
}

// pipeOwner is the host uid and gid of a process running as proc's user in
// a container with c's user namespace, or nil when lkc cannot tell (a
// joined user namespace, or an id the mappings leave out).
func pipeOwner(c *config.Config, proc *config.Process) *[2]int {
	if !c.HasNamespace("user") {
		return &[2]int{int(proc.UID), int(proc.GID)}
	}
	uid, uok := config.HostID(c.UIDMappings, proc.UID)
	gid, gok := config.HostID(c.GIDMappings, proc.GID)
	if !uok || !gok {
		return nil
	}
	return &[2]int{int(uid), int(gid)}
}
