package cli

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/cr"
)

// criuFlags are the flags checkpoint and restore share, as runc spells them.
type criuFlags struct {
	imagePath, workPath, parentPath, manageCgroups, pageServer string
	tcpEstablished, extUnixSk, shellJob, fileLocks, lazyPages  bool
	autoDedup                                                  bool
	emptyNS                                                    listFlag
	statusFD                                                   int
}

func (f *criuFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.imagePath, "image-path", "", "directory of the CRIU images (default ./checkpoint)")
	fs.StringVar(&f.workPath, "work-path", "", "directory for CRIU's logs and work files (default the image path)")
	fs.StringVar(&f.parentPath, "parent-path", "", "images of a previous pre-dump, relative to the image path")
	fs.StringVar(&f.manageCgroups, "manage-cgroups-mode", "", "cgroups mode: soft (default), full, strict or ignore")
	fs.StringVar(&f.pageServer, "page-server", "", "ADDRESS:PORT of a CRIU page server")
	fs.BoolVar(&f.tcpEstablished, "tcp-established", false, "checkpoint/restore established TCP connections")
	fs.BoolVar(&f.extUnixSk, "ext-unix-sk", false, "allow external unix sockets")
	fs.BoolVar(&f.shellJob, "shell-job", false, "allow a shell job (a terminal shared with the caller)")
	fs.BoolVar(&f.fileLocks, "file-locks", false, "handle file locks")
	fs.BoolVar(&f.lazyPages, "lazy-pages", false, "post-copy: memory is transferred on demand (userfaultfd)")
	fs.BoolVar(&f.autoDedup, "auto-dedup", false, "checkpoint: deduplicate images against the parent; restore: free each page of the images once restored")
	fs.Var(&f.emptyNS, "empty-ns", "namespace not to checkpoint but to create empty on restore (network); repeatable")
	fs.IntVar(&f.statusFD, "status-fd", -1, "fd to write a '\\0' to when ready (lazy pages)")
}

// parse parses args with fs, then the shared flags' paths and status fd,
// and returns the container id.
func (f *criuFlags) parse(fs *flag.FlagSet, args []string, usage string) (string, *os.File, error) {
	rest, err := parse(fs, args, exactly(1), usage)
	if err != nil {
		return "", nil, err
	}
	if err := f.paths(); err != nil {
		return "", nil, err
	}
	status, err := f.statusFile()
	return rest[0], status, err
}

// paths makes the image, work and parent paths absolute, with runc's
// default image path.
func (f *criuFlags) paths() error {
	if f.imagePath == "" {
		f.imagePath = "checkpoint"
	}
	var err error
	if f.imagePath, err = filepath.Abs(f.imagePath); err != nil {
		return err
	}
	if f.workPath, err = absPath(f.workPath); err != nil {
		return err
	}
	return nil
}

// statusFile checks --status-fd names an fd open for writing.
func (f *criuFlags) statusFile() (*os.File, error) {
	if f.statusFD < 0 {
		return nil, nil
	}
	flags, err := unix.FcntlInt(uintptr(f.statusFD), unix.F_GETFL, 0)
	if err != nil {
		return nil, fmt.Errorf("--status-fd %d: %w", f.statusFD, err)
	}
	if flags&(unix.O_WRONLY|unix.O_RDWR) == 0 {
		return nil, fmt.Errorf("--status-fd %d: not open for writing", f.statusFD)
	}
	return os.NewFile(uintptr(f.statusFD), "status-fd"), nil
}

func cmdCheckpoint(g *globals, args []string) error {
	if hasAll(args) {
		return cmdCheckpointAll(g, args)
	}
	var f criuFlags
	var o cr.CheckpointOpts
	fs := newFlags("checkpoint")
	f.register(fs)
	fs.BoolVar(&o.LeaveRunning, "leave-running", false, "leave the container running after the checkpoint")
	fs.BoolVar(&o.TCPSkipInFlight, "tcp-skip-in-flight", false, "skip in-flight TCP connections")
	fs.BoolVar(&o.PreDump, "pre-dump", false, "dump memory only, leaving the container running (needs soft-dirty)")
	fs.BoolVar(&o.LinkRemap, "link-remap", false, "allow one to link unlinked files back when possible")
	id, status, err := f.parse(fs, args, "lkc checkpoint [flags] <container-id>")
	if err != nil {
		return err
	}
	o.StatusFD = status
	o.Root, o.ID, o.CRIU, o.Verbose = g.root, id, g.criu, g.debug
	o.ImagePath, o.WorkPath, o.ParentPath = f.imagePath, f.workPath, f.parentPath
	o.TCPEstablished, o.ExtUnixSk, o.ShellJob, o.FileLocks = f.tcpEstablished, f.extUnixSk, f.shellJob, f.fileLocks
	o.LazyPages, o.AutoDedup, o.EmptyNS = f.lazyPages, f.autoDedup, f.emptyNS
	o.ManageCgroupsMode, o.PageServer = f.manageCgroups, f.pageServer
	if isTerminal(os.Stderr) {
		o.Progress = os.Stderr
	}
	// A Ctrl-C or a supervisor's SIGTERM ends the dump through lkc, which
	// stops its CRIU (in a process group of its own) and leaves the
	// container as it was, rather than ending lkc alone.
	o.Interrupts = func() (<-chan os.Signal, func()) {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, unix.SIGINT, unix.SIGTERM)
		return sigs, func() { signal.Stop(sigs) }
	}
	return cr.Checkpoint(o)
}

func cmdRestore(g *globals, args []string) error {
	if hasAll(args) {
		return cmdRestoreAll(g, args)
	}
	var f criuFlags
	var o cr.RestoreOpts
	fs := newFlags("restore")
	f.register(fs)
	fs.StringVar(&o.Bundle, "bundle", ".", "path to the bundle directory")
	fs.StringVar(&o.Bundle, "b", ".", "path to the bundle directory")
	fs.StringVar(&o.ConsoleSocket, "console-socket", "", "unix socket to send the new terminal's master to")
	fs.StringVar(&o.PidFile, "pid-file", "", "file to write the restored init's pid to")
	fs.BoolVar(&o.Detach, "detach", false, "detach from the container")
	fs.BoolVar(&o.Detach, "d", false, "detach from the container")
	fs.BoolVar(&o.NoSubreaper, "no-subreaper", false, "do not become a subreaper while waiting")
	fs.BoolVar(&o.NoPivot, "no-pivot", false, "accepted for runc compatibility (CRIU rebuilds the mounts)")
	fs.StringVar(&o.LSMProfile, "lsm-profile", "", "LSM profile of the restored tasks, as apparmor:PROFILE or selinux:LABEL")
	fs.StringVar(&o.LSMMountContext, "lsm-mount-context", "", "SELinux context of the restored mounts (context=)")
	id, status, err := f.parse(fs, args, "lkc restore [flags] <container-id>")
	if err != nil {
		return err
	}
	o.StatusFD = status
	if o.PidFile, err = absPath(o.PidFile); err != nil {
		return err
	}
	o.Root, o.ID, o.CRIU, o.Warn, o.Verbose = g.root, id, g.criu, g.warn, g.debug
	o.ImagePath, o.WorkPath, o.ParentPath = f.imagePath, f.workPath, f.parentPath
	o.TCPEstablished, o.ExtUnixSk, o.ShellJob, o.FileLocks = f.tcpEstablished, f.extUnixSk, f.shellJob, f.fileLocks
	o.LazyPages, o.AutoDedup, o.EmptyNS = f.lazyPages, f.autoDedup, f.emptyNS
	o.ManageCgroupsMode, o.PageServer = f.manageCgroups, f.pageServer
	o.Adopt = func(cfg *config.Config) (func(), error) { return adoptConfig(o.Root, o.ID, cfg) }
	return processExit(cr.Restore(o))
}

// listFlag is a repeatable string flag (runc's StringSlice).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
