package checkpoint

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// Worker is a `criu swrk` started before its request is complete
// (StartWorker), so that CRIU's own start (exec, its loader and ~25
// libraries: ~3.5 ms here, docs/criu.md) is paid before a migration
// freezes the container, or while a restore waits for its lazy-pages
// daemon, rather than in the downtime. A request takes it through
// Request.Worker.
type Worker struct {
	cmd  *exec.Cmd
	sock int
	kdat *kdatCache
	fit  workerFit
	own  []*os.File // kept open for CRIU, which reaches them through /proc/<lkc>/fd
	done bool
}

// workerFit is what CRIU was started with: a request must ask for the
// same to use the worker.
type workerFit struct {
	stdio   [3]*os.File
	extra   []*os.File
	cgroups []string
	cgns    bool
	netns   fileID
	// The images and work dirs, and the fds CRIU is to name them by
	// (opened again in CRIU's mount namespace when it has one).
	images, work     fileID
	imagesFd, workFd int
	// cgMode is the cgroup mode CRIU was started for, when starting it in
	// the cgroups set one (placement.enter): a request that takes the
	// worker must ask CRIU for it too.
	cgMode *CgroupMode
}

// fileID identifies an open file; zero for none.
type fileID struct{ dev, ino uint64 }

func idOf(fd int) fileID {
	var st unix.Stat_t
	if fd <= 0 || unix.Fstat(fd, &st) != nil {
		return fileID{}
	}
	return fileID{uint64(st.Dev), st.Ino}
}

func idOfFile(f *os.File) fileID {
	if f == nil {
		return fileID{}
	}
	return idOf(int(f.Fd()))
}

// StartWorker starts CRIU for c ahead of the call that sends c (Dump,
// Restore): what CRIU's start depends on must be in c already, and stay
// so: where it runs (Cgroups, CgroupNS, NetNS), its stdio and files
// (AddFile), and its images and work dirs (Opts.ImagesDirFd, WorkDirFd).
// The rest of c.Opts may still change. own are files the worker keeps
// open until it ends (the dirs' handles, when c does not outlive the
// call). A worker no request took must be stopped with Stop.
func (cr *Criu) StartWorker(c *Request, own ...*os.File) (*Worker, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("criu socketpair: %w", err)
	}
	srv := os.NewFile(uintptr(fds[1]), "criu-swrk")
	cmd := cr.command("swrk", "3")
	// A nil *os.File in an io.Reader is not a nil interface.
	if c.Stdio[0] != nil {
		cmd.Stdin = c.Stdio[0]
	}
	if c.Stdio[1] != nil {
		cmd.Stdout = c.Stdio[1]
	}
	if c.Stdio[2] != nil {
		cmd.Stderr = c.Stdio[2]
	}
	cmd.ExtraFiles = append([]*os.File{srv}, c.extra...)
	cmd.Env = criuEnv()
	if c.Opts == nil || !c.Opts.ShellJob {
		// Its own process group: a Ctrl-C on lkc's terminal is lkc's to
		// handle (checkpoint --all lets the dumps under way finish), not
		// the end of a dump or restore in the middle. A shell job's
		// restore needs the terminal's foreground group, so stays in it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	var pl *placement
	if len(c.Cgroups) > 0 || c.NetNS != nil {
		pl = &placement{tasks: c.Cgroups, cgns: c.CgroupNS, netns: c.NetNS}
	}
	var mode *CgroupMode
	if c.Opts != nil {
		mode = c.Opts.ManageCgroupsMode
	}
	kdat, err := startCriu(cmd, cr.Path, c.Opts, pl)
	srv.Close()
	if err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("%w: starting %s: %v", ErrNoCriu, cr.Path, err)
	}
	w := &Worker{cmd: cmd, sock: fds[0], kdat: kdat, own: own}
	w.fit = workerFit{stdio: c.Stdio, extra: slices.Clone(c.extra), cgroups: slices.Clone(c.Cgroups),
		cgns: c.CgroupNS, netns: idOfFile(c.NetNS)}
	if c.Opts != nil {
		w.fit.imagesFd, w.fit.workFd = c.Opts.ImagesDirFd, c.Opts.WorkDirFd
		w.fit.images, w.fit.work = idOf(c.Opts.ImagesDirFd), idOf(c.Opts.WorkDirFd)
		if c.Opts.ManageCgroupsMode != mode {
			w.fit.cgMode = c.Opts.ManageCgroupsMode
		}
	}
	return w, nil
}

// fits reports whether c asks for what w was started with; CRIU then
// names the dirs by w's fds.
func (w *Worker) fits(c *Request) bool {
	f := w.fit
	if c.Opts == nil || c.Stdio != f.stdio || !slices.Equal(c.extra, f.extra) ||
		!slices.Equal(c.Cgroups, f.cgroups) || c.CgroupNS != f.cgns || idOfFile(c.NetNS) != f.netns {
		return false
	}
	return idOf(c.Opts.ImagesDirFd) == f.images && idOf(c.Opts.WorkDirFd) == f.work
}

// adopt makes c, which fits w, ask CRIU for what w was started with: the
// dirs by w's fds, and the cgroup mode starting it in the cgroups set.
func (w *Worker) adopt(c *Request) {
	c.Opts.ImagesDirFd, c.Opts.WorkDirFd = w.fit.imagesFd, w.fit.workFd
	if w.fit.cgMode != nil {
		c.Opts.ManageCgroupsMode = w.fit.cgMode
	}
}

// finish ends a worker whose conversation is over: CRIU exits once the
// connection closes. It returns CRIU's exit error.
func (w *Worker) finish() error {
	if w.done {
		return nil
	}
	w.done = true
	unix.Shutdown(w.sock, unix.SHUT_RDWR)
	err := w.cmd.Wait()
	unix.Close(w.sock)
	if w.kdat != nil {
		w.kdat.save()
		w.kdat.close()
	}
	for _, f := range w.own {
		f.Close()
	}
	return err
}

// Stop ends a worker no request took (or one a request is done with);
// a second call does nothing.
func (w *Worker) Stop() {
	if !w.done {
		w.cmd.Process.Kill()
		w.finish()
	}
}
