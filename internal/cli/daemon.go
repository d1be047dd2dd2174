package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/lkc-containers/lkc/internal/daemon"
	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/fdstore"
	"github.com/lkc-containers/lkc/internal/fuse"
	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/procview"
	"golang.org/x/sys/unix"
)

const daemonUsage = "lkc daemon [--detach] | daemon status [--json] | daemon stop | daemon reload | daemon upgrade [--exe PATH]"

// daemonFlags are `lkc daemon`'s flags, the roles' hidden ones included.
type daemonFlags struct {
	detach, json   bool
	exe            string
	holder, worker bool   // the roles (started by lkc itself)
	resume         string // holder: what the previous holder handed over
	readyFD        int    // holder: the readiness pipe's fd
	holderPid      int    // worker: its holder
	ready          bool   // worker: the readiness pipe is on fd 4
	predecessor    int    // worker: an upgrade's old worker
}

func cmdDaemon(g *globals, args []string) error {
	if len(args) > 0 && args[0] == procview.RemountArgs[1] {
		return remount(args[1:])
	}
	if len(args) > 1 && args[0] == procview.CloneArgs[1] {
		return procview.CloneFiles(os.NewFile(3, "clones"), os.NewFile(4, "view"), args[1], args[2:])
	}
	if len(args) == 2 && args[0] == procview.PollArgs[1] {
		return fuse.PollOnce(os.Stdin, args[1])
	}
	var f daemonFlags
	fs := newFlags("daemon")
	fs.BoolVar(&f.detach, "detach", false, "run in the background; return once it serves")
	fs.BoolVar(&f.json, "json", false, "status: print JSON")
	fs.StringVar(&f.exe, "exe", "", "upgrade: the new binary (default: this lkc)")
	fs.BoolVar(&f.holder, "holder", false, "")
	fs.BoolVar(&f.worker, "worker", false, "")
	fs.StringVar(&f.resume, "resume", "", "")
	fs.IntVar(&f.readyFD, "ready-fd", -1, "")
	fs.IntVar(&f.holderPid, "holder-pid", 0, "")
	fs.BoolVar(&f.ready, "ready", false, "")
	fs.IntVar(&f.predecessor, "predecessor", 0, "")
	rest, err := parse(fs, args, nargs{min: 0, max: 1}, daemonUsage)
	if err != nil {
		return err
	}
	if err := f.check(rest); err != nil {
		return err
	}
	conf, err := hostconf.Load()
	if err != nil {
		return err
	}
	dir := conf.DaemonDirectory()
	if len(rest) == 1 {
		return daemonCommand(dir, rest[0], &f)
	}
	switch {
	case f.worker:
		return runWorker(dir, &f)
	case f.holder:
		return runHolder(dir, &f)
	case f.detach:
		return daemonapi.Start(dir, selfExe(), conf.LogPath())
	}
	if cl, err := daemonapi.Dial(dir); err == nil {
		cl.Close()
		return fmt.Errorf("lkc daemon already runs in %s", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	return runHolder(dir, &f)
}

// check refuses a command's flag without its command: `lkc daemon
// --json` must not start a daemon in the foreground.
func (f *daemonFlags) check(rest []string) error {
	cmd := ""
	if len(rest) == 1 {
		cmd = rest[0]
	}
	switch {
	case f.json && cmd != "status":
		return errors.New("--json goes with status")
	case f.exe != "" && cmd != "upgrade":
		return errors.New("--exe goes with upgrade")
	case f.detach && cmd != "":
		return errors.New("--detach starts the daemon: it takes no command")
	}
	return nil
}

// daemonCommand runs one of the commands that talk to a running daemon.
func daemonCommand(dir, name string, f *daemonFlags) error {
	switch name {
	case "status", "stop", "reload", "upgrade":
	default:
		return fmt.Errorf("unknown daemon command %q (usage: %s)", name, daemonUsage)
	}
	cl, err := daemonapi.Dial(dir)
	if err != nil {
		return err
	}
	defer cl.Close()
	switch name {
	case "status":
		return daemonStatus(cl, f.json)
	case "stop":
		r, err := cl.Stop()
		if err != nil {
			return err
		}
		return waitGone(5*time.Second, r.WorkerPid, r.HolderPid)
	case "reload":
		return cl.Reload()
	}
	return daemonUpgrade(cl, dir, f.exe)
}

func daemonStatus(cl *daemonapi.Client, asJSON bool) error {
	s, err := cl.Status()
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(s)
	}
	fmt.Printf("build %s, protocol %d, holder %d, worker %d\n", s.Build, s.Version, s.HolderPid, s.WorkerPid)
	fmt.Printf("services: %s\n", strings.Join(s.Services, " "))
	fmt.Printf("held fds: %s\n", strings.Join(s.Held, " "))
	for _, c := range s.Containers {
		fmt.Printf("slot %d gen %d: %s in %s %+v\n", c.Slot, c.Gen, c.ID, c.Root, c.Features)
	}
	return nil
}

func daemonUpgrade(cl *daemonapi.Client, dir, exe string) error {
	if exe == "" {
		exe = selfExe()
	}
	exe, err := filepath.Abs(exe)
	if err != nil {
		return err
	}
	r, err := cl.Upgrade(exe)
	if err != nil {
		return err
	}
	fmt.Printf("worker %d of %s serves\n", r.WorkerPid, exe)
	return nil
}

// waitGone waits until every pid has exited (by pidfd, no polling).
func waitGone(limit time.Duration, pids ...int) error {
	deadline := time.Now().Add(limit)
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone already
		}
		ms := max(int(time.Until(deadline).Milliseconds()), 0)
		n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms)
		unix.Close(fd)
		if n == 0 {
			return fmt.Errorf("lkc daemon process %d still runs after %v", pid, limit)
		}
	}
	return nil
}

func selfExe() string {
	exe, err := os.Executable()
	if err != nil {
		return "/proc/self/exe"
	}
	return exe
}

func runHolder(dir string, f *daemonFlags) error {
	h := &fdstore.Holder{Dir: dir,
		Logf: log.New(os.Stderr, fmt.Sprintf("lkc holder %d: ", os.Getpid()), log.LstdFlags|log.Lmicroseconds).Printf}
	if f.readyFD >= 0 {
		h.Ready = os.NewFile(uintptr(f.readyFD), "ready")
		unix.CloseOnExec(f.readyFD)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT)
	go func() {
		<-sigs
		h.Stop()
	}()
	var st *fdstore.Resume
	if f.resume != "" {
		var err error
		if st, err = fdstore.ParseResume(f.resume); err != nil {
			return err
		}
	}
	return h.Run(st)
}

func runWorker(dir string, f *daemonFlags) error {
	if f.holderPid <= 0 {
		return errors.New("--worker needs --holder-pid (lkc starts workers itself: run lkc daemon)")
	}
	unix.CloseOnExec(3)
	o := daemon.Options{Dir: dir, HolderPid: f.holderPid, Holder: os.NewFile(3, "holder"), Build: Version,
		Predecessor: f.predecessor}
	if f.ready {
		unix.CloseOnExec(4)
		o.Ready = os.NewFile(4, "ready")
	}
	return daemon.Run(o)
}

// remount is the worker's helper that replaces a container's dead bind
// mounts of the virtual files (procview.RemountArgs): the container's root
// on fd 4, the new mounts on fds 5..., already in its mount namespace.
func remount(dests []string) error {
	mounts := make([]*os.File, len(dests))
	for i := range dests {
		mounts[i] = os.NewFile(uintptr(5+i), dests[i])
	}
	return procview.Remount(os.NewFile(4, "root"), dests, mounts)
}
