package checkpoint

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
)

// LazyPages is a running `criu lazy-pages` daemon: it fetches the pages a
// lazy restore leaves out from the source's page server, on fault and in
// the background, and exits once every page has arrived.
type LazyPages struct {
	cmd    *exec.Cmd
	done   chan error
	status *os.File // the daemon's --status-fd: one byte once it is ready
	log    string
	ps     *PageServerConn
}

// StartLazyPages starts the daemon for the images in imagesDir against the
// page server ps is connected to, and returns at once; Ready waits until
// it accepts the restore's connection (on lazy-pages.socket in workDir,
// which the restore must share). The daemon takes over the connection
// (--ps-socket) and reads the images while its caller prepares the
// restore. logLevel is CRIU's -v: at 4 it logs every page it fetches.
func (cr *Criu) StartLazyPages(imagesDir, workDir string, ps *PageServerConn, logLevel int) (*LazyPages, error) {
	host, port, err := net.SplitHostPort(ps.Addr)
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := cr.command("lazy-pages", "--page-server", "--address", host, "--port", port, "--ps-socket", "4",
		"-D", imagesDir, "-W", workDir, "-o", "lazy-pages.log", "-v"+strconv.Itoa(logLevel), "--status-fd", "3")
	cmd.ExtraFiles = []*os.File{w, ps.File()}
	cmd.Env = criuEnv()
	// Its own session: the daemon outlives a restore run from a terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	kdat, err := startCriu(cmd, cr.Path, nil, nil)
	w.Close()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("%w: starting %s lazy-pages: %v", ErrNoCriu, cr.Path, err)
	}
	lp := &LazyPages{cmd: cmd, done: make(chan error, 1), status: r, log: filepath.Join(workDir, "lazy-pages.log"), ps: ps}
	go func() {
		err := cmd.Wait()
		if kdat != nil {
			kdat.save()
			kdat.close()
		}
		lp.done <- err
	}()
	return lp, nil
}

// Ready waits until the daemon accepts the restore's connection, or
// returns why it exited first.
func (lp *LazyPages) Ready() error {
	defer lp.status.Close()
	var b [1]byte
	if n, _ := lp.status.Read(b[:]); n != 1 {
		req := &Request{Log: lp.log}
		return lp.ps.explain(req.explain(fmt.Errorf("criu lazy-pages exited before it was ready (%v)", lp.Wait())))
	}
	return nil
}

// Failed delivers the daemon's error if it exits unsuccessfully, with the
// first error it logged and whether the page server went away; for
// Request.Abort.
func (lp *LazyPages) Failed() <-chan error {
	ch := make(chan error, 1)
	go func() {
		if err := lp.Wait(); err != nil {
			req := &Request{Log: lp.log}
			ch <- lp.ps.explain(req.explain(fmt.Errorf("criu lazy-pages: %w", err)))
		}
	}()
	return ch
}

// Wait waits until the daemon has fetched every page and exited.
func (lp *LazyPages) Wait() error {
	err := <-lp.done
	lp.done <- err
	return err
}

// Background gives the daemon the lowest CPU priority, for once the
// restore has ended. From then on CRIU polls its sockets without sleeping
// while a request for pages is in flight (handle_requests in criu/uffd.c),
// a whole CPU for as long as the transfer lasts. At the lowest weight that
// busy-wait takes only what the CPU's other work leaves idle: the page
// server, the tunnel feeding the daemon and other migrations come first,
// and the daemon still gets a share to copy the pages in. The daemon runs
// in its own session, so with autogroup scheduling
// (kernel.sched_autogroup_enabled) its group's nice is lowered too: a
// task's own nice weighs only within its group. Without CAP_SYS_ADMIN the
// kernel takes one autogroup change per 100 ms from anyone and answers
// EAGAIN meanwhile.
func (lp *LazyPages) Background() error {
	pid := lp.cmd.Process.Pid
	if err := syscall.Setpriority(syscall.PRIO_PROCESS, pid, backgroundNice); err != nil {
		return fmt.Errorf("setpriority criu lazy-pages %d: %w", pid, err)
	}
	err := os.WriteFile(fmt.Sprintf("/proc/%d/autogroup", pid), []byte(strconv.Itoa(backgroundNice)), 0)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("lowering the autogroup of criu lazy-pages %d: %w", pid, err)
	}
	return nil
}

// backgroundNice is the lowest priority (highest nice) there is.
const backgroundNice = 19

// Stop kills the daemon (a restore that failed no longer needs it).
func (lp *LazyPages) Stop() {
	lp.cmd.Process.Kill()
	lp.Wait()
	lp.status.Close()
}
