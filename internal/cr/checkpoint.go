package cr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/checkpoint"
	"github.com/lkc-containers/lkc/internal/container"
	"github.com/lkc-containers/lkc/internal/steplog"
)

// ErrNotSupported marks a checkpoint feature this host cannot provide.
var ErrNotSupported = errors.New("not supported on this host")

// CheckpointOpts are the options of `lkc checkpoint` (runc's flags).
type CheckpointOpts struct {
	Root, ID string
	CRIU     string // criu binary; "" finds the default (see internal/checkpoint)

	ImagePath  string // where the images go (created if missing)
	WorkPath   string // logs and CRIU's work files ("" = ImagePath)
	ParentPath string // previous pre-dump, relative to ImagePath or absolute

	LeaveRunning    bool
	TCPEstablished  bool
	TCPSkipInFlight bool
	ExtUnixSk       bool
	ShellJob        bool
	FileLocks       bool
	PreDump         bool
	AutoDedup       bool
	LazyPages       bool
	LinkRemap       bool
	EmptyNS         []string // namespace types CRIU must not dump ("network", ...)

	ManageCgroupsMode string // soft|full|strict|ignore ("" = soft)
	PageServer        string // "host:port": send pages there (or, with LazyPages, serve them there)

	// StatusFD, when not nil, gets one '\0' byte when a lazy-pages dump is
	// ready for the restore to begin (runc's --status-fd).
	StatusFD *os.File
	// Progress, when not nil, gets human progress lines (bytes written);
	// nil is quiet.
	Progress io.Writer
	// Interrupts, when not nil, is called once the checkpoint holds the
	// container (until then a signal's default ends lkc, which has done
	// nothing yet): it starts catching the signals (SIGINT, SIGTERM) that
	// end the checkpoint, and returns them and what stops catching them. On
	// one, CRIU stops where it can without harm to the container
	// (dumpInterrupt), which is left as it was, and the checkpoint fails
	// naming the signal. nil lets the dump run to its end.
	Interrupts func() (<-chan os.Signal, func())
	// Abort, when not nil, stops the checkpoint as a caught signal does
	// once it ends (checkpoint --all's second signal), the container left
	// as it was; the error names its cause (context.Cause). One that ended
	// before the freeze fails the checkpoint then, with nothing touched.
	Abort context.Context
	// Verbose makes CRIU log everything it does (log level 4, `lkc
	// --debug`); by default it logs errors and warnings only, which makes
	// a dump about 10% faster.
	Verbose bool
}

// DumpTuning is what a migration adds to a checkpoint to keep its
// downtime short; the zero value is a plain `lkc checkpoint`.
type DumpTuning struct {
	// NetworkIsolated says the caller has cut the container off every
	// network, as a migration does by taking its veths off their bridges:
	// CRIU then does not lock the network namespace itself (its nftables
	// lock costs two RCU grace periods, ~25 ms, while the container is
	// frozen). The restore must be told the same (RestoreTuning).
	NetworkIsolated bool
	// FeaturesChecked says the caller already asked CRIU for what
	// PreDump and LazyPages need (a migration does so in its handshake),
	// which spares a CRIU run, during the downtime for a post-copy dump.
	FeaturesChecked bool
	// Worker, when not nil, is a CRIU started for this dump before the
	// freeze (PrestartDump). The dump uses it when the frozen container
	// needs CRIU started as it was, and stops it otherwise; the checkpoint
	// stops it either way.
	Worker *checkpoint.Worker
}

// dump is one checkpoint's options.
type dump struct {
	CheckpointOpts
	DumpTuning
	// frozenByLkc says lkc froze the running container for CRIU, whose
	// images then record it as frozen (markFrozenByLkc).
	frozenByLkc bool
	interrupt   *dumpInterrupt
	// pageServer is the connection to the page server the pages go to,
	// made before the freeze (none for a lazy dump, whose CRIU listens).
	pageServer *checkpoint.PageServerConn
}

// descriptorsFile records, as runc does, what the container's fds 0-2 were
// at dump time, so a restore can hand CRIU replacements for pipes.
const descriptorsFile = "descriptors.json"

// Checkpoint dumps container ID to o.ImagePath with CRIU. A checkpoint that
// fails leaves the container running and unchanged. Unless LeaveRunning or
// PreDump is set, a successful checkpoint stops the container and deletes
// it, as runc does, so it can be restored under the same id.
func Checkpoint(o CheckpointOpts) error { return CheckpointTuned(o, DumpTuning{}) }

// CheckpointTuned is Checkpoint with a migration's tuning.
func CheckpointTuned(o CheckpointOpts, t DumpTuning) error {
	if t.Worker != nil {
		defer t.Worker.Stop()
	}
	cr, err := checkpoint.Find(o.CRIU)
	if err != nil {
		return err
	}
	defer checkpoint.WarmPerfHooks()()
	h, err := container.Hold(o.Root, o.ID)
	if err != nil {
		return err
	}
	c, d := subject{h}, dump{CheckpointOpts: o, DumpTuning: t, interrupt: watchInterrupt(o.Interrupts, o.Abort)}
	defer d.interrupt.stop()
	if err := c.checkDumpable(cr, d); err != nil {
		c.Release()
		return err
	}
	if o.PageServer != "" && !o.LazyPages {
		if d.pageServer, err = dialPageServer(o.PageServer); err != nil {
			c.Release()
			return fmt.Errorf("checkpointing container %s: %w", o.ID, err)
		}
		defer d.pageServer.Close()
	}
	defer steplog.Step("checkpoint")()
	unmark, err := c.MarkDumping()
	if err != nil {
		c.Release()
		return fmt.Errorf("checkpointing container %s: %w", o.ID, err)
	}
	if err := d.interrupt.cause(); err != nil {
		unmark()
		c.Release()
		return fmt.Errorf("checkpointing container %s: %w", o.ID, err)
	}
	end := steplog.Step("checkpoint: freeze")
	thaw, froze, err := c.freezeForDump(c.Status())
	d.frozenByLkc = froze
	end()
	if err != nil {
		unmark()
		c.Release()
		return fmt.Errorf("checkpointing container %s: %w", o.ID, err)
	}
	err = c.checkpoint(cr, d)
	if cause := d.interrupt.cause(); err != nil && cause != nil {
		err = cause
	}
	if err != nil || o.LeaveRunning || o.PreDump {
		unmark()
		if terr := thaw(); err == nil && terr != nil {
			err = terr
		}
		c.Release()
		if err != nil {
			return fmt.Errorf("checkpointing container %s: %w", o.ID, err)
		}
		return nil
	}
	// CRIU killed the tasks; what is left is a stopped container's record.
	// The mark goes with it: a kill that waits meanwhile says that the
	// checkpoint removed the container.
	if err := c.Destroy(); err != nil {
		unmark()
		return err
	}
	return nil
}

// subject is the container a checkpoint works on.
type subject struct{ *container.Handle }

// checkDumpable refuses, before the freeze, a container that cannot be
// dumped: a check that fails should not touch the container.
func (c subject) checkDumpable(cr *checkpoint.Criu, d dump) error {
	if s := c.Status(); s != container.Running && s != container.Paused {
		return fmt.Errorf("%w: cannot checkpoint container %s: it is %s", container.ErrWrongState, d.ID, s)
	}
	err := checkCriuOpts(d.ManageCgroupsMode, d.EmptyNS, d.PageServer)
	if err == nil {
		err = c.checkNoPendingExec()
	}
	if err == nil {
		err = checkParent(d.ImagePath, d.ParentPath)
	}
	if err == nil {
		err = checkDumpFeatures(cr, d)
	}
	if err == nil {
		err = checkNotIDMapped(c.Config())
	}
	if err == nil && !c.Config().NewNamespace("mount") {
		// CRIU rebuilds a container's mounts in a mount namespace of its own.
		err = fmt.Errorf("%w: the container has no mount namespace of its own", ErrNotSupported)
	}
	if err == nil && !d.PreDump && !d.LeaveRunning && !d.ShellJob && !c.Config().Process.Terminal {
		// The dump would stop it for good.
		if i, link := container.HostTerminal(c.StdioFds()); i >= 0 {
			err = fmt.Errorf("%w: its fd %d is the terminal %s, which no restore can give back (start it with its stdio redirected, or dump it with --leave-running)", ErrNotSupported, i, link)
		}
	}
	if err != nil {
		return fmt.Errorf("checkpointing container %s: %w", d.ID, err)
	}
	return nil
}

// PrestartDump starts CRIU for a dump of container o.ID into o.ImagePath
// before the caller freezes the container (a migration), where the dump
// would start it: inside the container's network namespace when lkc will
// carry that namespace and CRIU runs in it (carryNetns). CRIU's start then
// stays out of the downtime. CheckpointTuned with the Worker set takes it;
// a caller that does not call it stops it.
func PrestartDump(o CheckpointOpts, t DumpTuning) (*checkpoint.Worker, error) {
	cr, err := checkpoint.Find(o.CRIU)
	if err != nil {
		return nil, err
	}
	h, err := container.Inspect(o.Root, o.ID)
	if err != nil {
		return nil, err
	}
	c := subject{h}
	dirs, err := openDirs(o.ImagePath, o.WorkPath, true)
	if err != nil {
		return nil, err
	}
	req := &checkpoint.Request{Opts: &checkpoint.Opts{ImagesDirFd: dirs.imageFd(), WorkDirFd: dirs.workFd()}}
	own := []*os.File{dirs.image, dirs.work}
	if c.criuInsideNetns(dump{CheckpointOpts: o, DumpTuning: t}) {
		if req.NetNS, err = os.Open(fmt.Sprintf("/proc/%d/ns/net", c.Pid())); err != nil {
			dirs.close()
			return nil, fmt.Errorf("opening the network namespace: %w", err)
		}
		own = append(own, req.NetNS)
	}
	w, err := cr.StartWorker(req, own...)
	if err != nil {
		for _, f := range own {
			f.Close()
		}
		return nil, err
	}
	return w, nil
}

// freezeForDump freezes a running container before CRIU sees it and
// returns what thaws it again; a paused one stays as it is. CRIU freezes
// the cgroup itself when it finds it thawed, but then polls the freezer in
// 100 ms steps (criu/seize.c), and a container of more than one process is
// rarely frozen at the first look: every such dump paid 100 ms, all of it
// downtime. Frozen by lkc (polled from 0.1 ms), the cgroup is FROZEN when
// CRIU opens it, and CRIU leaves it frozen when it is done. froze says
// whether lkc froze it.
func (c subject) freezeForDump(status string) (thaw func() error, froze bool, err error) {
	if status != container.Running || freezerDir(c.CgroupPaths()) == "" {
		return func() error { return nil }, false, nil
	}
	cg := c.Cgroup()
	if err := cg.Freeze(); err != nil {
		return nil, false, errors.Join(fmt.Errorf("freezing: %w", err), cg.Thaw())
	}
	return func() error {
		if err := cg.Thaw(); err != nil {
			return fmt.Errorf("thawing after the dump: %w", err)
		}
		return nil
	}, true, nil
}

func (c subject) checkpoint(cr *checkpoint.Criu, o dump) error {
	dirs, err := openDirs(o.ImagePath, o.WorkPath, true)
	if err != nil {
		return err
	}
	defer dirs.close()
	opts, carry, err := c.dumpOpts(o, dirs)
	if err != nil {
		return err
	}
	netnsSaved := func() error { return nil }
	if carry != nil {
		netnsSaved = carry.saved
		defer netnsSaved()
	}
	log := "dump.log"
	if o.PreDump {
		log = "pre-dump.log"
	}
	opts.LogFile = log
	req := &checkpoint.Request{Opts: opts, Log: filepath.Join(dirs.workPath, log), Worker: o.Worker, PageServer: o.pageServer}
	if carry != nil && carry.inside {
		ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", c.Pid()))
		if err != nil {
			return fmt.Errorf("opening the network namespace: %w", err)
		}
		defer ns.Close()
		req.NetNS = ns
	}
	pids, _ := c.Cgroup().Procs()
	pin := pinForDump(pids)
	defer pin.release()
	if pin.cpu >= 0 {
		req.Affinity = new(unix.CPUSet)
		req.Affinity.Set(pin.cpu)
	}
	req.Notify, req.Abort = dumpNotify(o, netnsSaved, pin), o.interrupt.abort
	stop := watchProgress(o.Progress, dirs.imagePath)
	if o.PreDump {
		err = cr.PreDump(req)
	} else {
		var ext []string
		c.saveProcCarry(dirs.imagePath)
		if err = markFrozenByLkc(dirs.imagePath, o.frozenByLkc); err == nil {
			ext, err = c.saveDescriptors(dirs.imagePath)
		}
		if err == nil {
			opts.External = append(opts.External, ext...)
			err = cr.Dump(req)
		}
		if serr := netnsSaved(); err == nil {
			err = serr
		}
	}
	stop(err == nil)
	return err
}

// dumpNotify answers CRIU's notifications during a dump: the carried
// network namespace must be saved before CRIU lets the tasks go (or kills
// them), and a lazy dump's status byte goes out once its images are
// written.
func dumpNotify(o dump, netnsSaved func() error, pin *dumpPin) func(string, int, *os.File) error {
	return func(script string, _ int, fd *os.File) error {
		if fd != nil {
			fd.Close()
		}
		if err := o.interrupt.notified(script); err != nil {
			return err
		}
		if script == "post-dump" {
			return netnsSaved()
		}
		if script != "status-ready" {
			return nil
		}
		// The images are written: a lazy dump only serves pages now.
		pin.release()
		if o.StatusFD != nil {
			// Written here rather than by CRIU's own status fd, so the byte
			// goes out only after lkc saw the dump succeed.
			_, err := o.StatusFD.Write([]byte{0})
			return err
		}
		return nil
	}
}

// checkParent refuses a --parent-path that names no directory, as runc
// does, before the image directory is made: CRIU would fail only after
// the freeze. A relative path is relative to the image path.
func checkParent(imagePath, parent string) error {
	if parent == "" {
		return nil
	}
	if !filepath.IsAbs(parent) {
		parent = filepath.Join(imagePath, parent)
	}
	fi, err := os.Stat(parent)
	if err == nil && !fi.IsDir() {
		err = &os.PathError{Op: "stat", Path: parent, Err: unix.ENOTDIR}
	}
	if err != nil {
		return fmt.Errorf("--parent-path: %w", err)
	}
	return nil
}

// checkDumpFeatures refuses, in one line, what CRIU or the kernel lacks.
// A dump on top of a pre-dump (--parent-path) tracks dirty memory as the
// pre-dump does.
func checkDumpFeatures(cr *checkpoint.Criu, o dump) error {
	track := o.PreDump || o.ParentPath != ""
	if !track && !o.LazyPages || o.FeaturesChecked {
		return nil
	}
	f, err := cr.Features(checkpoint.Features{MemTrack: track, LazyPages: o.LazyPages})
	if err != nil {
		return err
	}
	if track && !f.MemTrack {
		flag := "--pre-dump"
		if !o.PreDump {
			flag = "--parent-path"
		}
		return fmt.Errorf("%s: %w: the kernel does not track dirty memory (soft-dirty, CONFIG_MEM_SOFT_DIRTY); use a full checkpoint, or --lazy-pages for post-copy", flag, ErrNotSupported)
	}
	if o.LazyPages && !f.LazyPages {
		return fmt.Errorf("--lazy-pages: %w: CRIU reports no userfaultfd support", ErrNotSupported)
	}
	if o.LazyPages && o.PageServer != "" {
		if err := checkpoint.CanServeLazyPages(); err != nil {
			return fmt.Errorf("--lazy-pages: %w: %v", ErrNotSupported, err)
		}
	}
	return nil
}

// dumpOpts returns CRIU's options for the dump, and the network namespace
// lkc carries, if it does (carryNetns).
func (c subject) dumpOpts(o dump, d *imageDirs) (*checkpoint.Opts, *netnsCarry, error) {
	opts, err := criuOpts(d, o.ManageCgroupsMode, o.EmptyNS, o.Verbose)
	if err != nil {
		return nil, nil, err
	}
	opts.Pid, opts.Root = c.Pid(), c.Rootfs()
	opts.LeaveRunning, opts.TCPEstablished, opts.TCPSkipInFlight = o.LeaveRunning, o.TCPEstablished, o.TCPSkipInFlight
	opts.ExtUnixSk, opts.ShellJob, opts.FileLocks, opts.AutoDedup = o.ExtUnixSk, o.ShellJob, o.FileLocks, o.AutoDedup
	opts.LazyPages, opts.LinkRemap, opts.OrphanPtsMaster = o.LazyPages, o.LinkRemap, true
	opts.FreezeCgroup = freezerDir(c.CgroupPaths())
	if o.NetworkIsolated {
		opts.NetworkLock = checkpoint.LockSkip
	}
	opts.CgroupDumpControllers = dumpControllers(c.CgroupPaths())
	if o.PageServer != "" {
		if opts.PageServerAddr, opts.PageServerPort, err = splitHostPort(o.PageServer); err != nil {
			return nil, nil, err
		}
	}
	if o.ParentPath != "" {
		opts.ParentImg = o.ParentPath
		opts.TrackMem = true
	}
	if o.PreDump {
		opts.TrackMem = true
		return opts, nil, nil
	}
	if opts.ExtMounts, err = c.dumpMounts(); err != nil {
		return nil, nil, err
	}
	if opts.External, err = externalNamespaces(c.Config()); err != nil {
		return nil, nil, err
	}
	carry, err := c.carryNetns(o, d.imagePath)
	if err != nil {
		return nil, nil, err
	}
	if carry != nil {
		if !carry.lock {
			opts.NetworkLock = checkpoint.LockSkip
		}
		if carry.ext != "" {
			opts.External = append(opts.External, carry.ext)
		}
	}
	return opts, carry, nil
}

// saveDescriptors records what the container's fds 0-2 are (the files
// lkc handed it, wherever its tasks hold them now), and returns the CRIU
// externals for those that are files outside the container's mounts (the
// caller's /dev/null, a log file): CRIU cannot dump them, so they are
// named "file[mnt_id:inode]" for the restore to replace with its own fds,
// as pipes are.
func (c subject) saveDescriptors(imageDir string) ([]string, error) {
	mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", c.Pid()))
	if err != nil {
		return nil, fmt.Errorf("reading the container's mounts: %w", err)
	}
	var ext []string
	fds := make([]string, 3)
	for i, at := range c.StdioFds() {
		// An fd the container closed has no link: recorded as "".
		fds[i], _ = os.Readlink(at.Path())
		if !strings.HasPrefix(fds[i], "/") {
			continue // pipe:[N], socket:[N], anon_inode:...
		}
		key, err := externalFile(at, mounts)
		if err != nil {
			return nil, err
		}
		if key != "" {
			fds[i] = key
			if !slices.Contains(ext, key) {
				ext = append(ext, key)
			}
		}
	}
	data, err := json.Marshal(fds)
	if err == nil {
		err = os.WriteFile(filepath.Join(imageDir, descriptorsFile), data, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("recording the container's stdio: %w", err)
	}
	return ext, nil
}

// externalFile returns CRIU's key for the file at fd when it lies on a
// mount the container does not have, else "".
func externalFile(at container.StdioFd, mountinfo []byte) (string, error) {
	mnt, err := at.Mount()
	if err != nil {
		return "", fmt.Errorf("reading the mount of fd %d: %w", at.Fd, err)
	}
	for _, line := range strings.Split(string(mountinfo), "\n") {
		if id, _, _ := strings.Cut(line, " "); id == strconv.Itoa(mnt) {
			return "", nil
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(at.Path(), &st); err != nil {
		return "", fmt.Errorf("stat of fd %d: %w", at.Fd, err)
	}
	// CRIU's spelling: both numbers in hex.
	return fmt.Sprintf("file[%x:%x]", mnt, st.Ino), nil
}
