package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/container"
	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/mount"
	"github.com/lkc-containers/lkc/internal/oompolicy"
	"github.com/lkc-containers/lkc/internal/seccompagent"
	"github.com/lkc-containers/lkc/internal/state"
	"github.com/lkc-containers/lkc/internal/steplog"
)

// adoption is a container the daemon serves (or one that asks for
// nothing: then its methods do nothing).
type adoption struct {
	dir, root, id string // dir: the daemon's directory, "" when not adopted
	gen           uint64
	// answered is closed once the daemon answered an adopt sent ahead
	// (adopt), with reply or err; nil for an adopt that was waited for.
	answered chan struct{}
	reply    *daemonapi.AdoptReply
	err      error
	// made are the detached mounts of the view's files (cloneAll), by the
	// index of their source in the reply's mounts; cloned is closed once
	// they are made.
	made   []*os.File
	cloned chan struct{}
}

// answer waits for an adopt sent ahead and says whether the daemon took
// the container on.
func (a *adoption) answer() bool {
	if a.answered != nil {
		<-a.answered
		if a.err != nil {
			return false
		}
		a.gen = a.reply.Gen
	}
	return a.dir != ""
}

// release tells the daemon to stop serving the container and waits for
// it: create's and restore's failure paths, after which callers (and
// tests) may look at the daemon's state.
func (a *adoption) release() {
	if a.answer() {
		releaseFrom(a.dir, a.root, a.id, a.gen)
	}
}

// releaseLater tells the daemon to stop serving the container, which is
// gone, without waiting: the end of `lkc run`. The daemon serves the
// request after lkc has exited; it names the adopt's generation, so it
// cannot release the next container of the same id if that is adopted
// first.
func (a *adoption) releaseLater() {
	if !a.answer() {
		return
	}
	defer steplog.Step("release")()
	daemonapi.Post(a.dir, daemonapi.OpRelease, &daemonapi.Release{Container: daemonapi.Container{Root: a.root, ID: a.id}, Gen: a.gen})
}

// adopt asks the daemon to serve a container being created whose
// annotations (or the host defaults) ask for a daemon feature, starting
// the daemon where docs/daemon.md allows. A container that asks for none
// never touches the daemon. The adopt is sent ahead: create goes on
// (its state, init's start, the cgroup) while the daemon works, and waits
// for the answer only before it sends init the config (o.Served), which
// then gets the mounts of what the daemon serves. The sysinfo listener,
// which init's start needs, is where this host's configuration says the
// daemon's agent listens; the answer must agree.
func adopt(o *container.CreateOpts) (*adoption, error) {
	conf, f, err := wanted(o.Root, o.ID, o.Config)
	if err != nil || !f.Any() {
		return &adoption{}, err
	}
	if f.Proc {
		if err := bootAtStart(o.Config); err != nil {
			return nil, fmt.Errorf("container %s: %w", o.ID, err)
		}
	}
	if f.Proc && !viewMounted(conf.DaemonDirectory()) {
		// Init's mount namespace, made as it starts, must have the view
		// (for a file that cannot be cloned, which init binds): the
		// daemon mounts it at the first adopt that asks for it.
		return adoptFirst(o, conf, f)
	}
	cl, err := daemonapi.Connect(conf.DaemonDirectory())
	if err != nil {
		// Not running: started (or refused) first, as the answer is
		// needed before init starts anyway.
		return adoptFirst(o, conf, f)
	}
	a := &adoption{dir: conf.DaemonDirectory(), root: o.Root, id: o.ID, answered: make(chan struct{}), cloned: make(chan struct{})}
	var agent *daemonapi.SeccompReply
	if f.Proc && conf.ProcSysinfo {
		agent = &daemonapi.SeccompReply{Path: filepath.Join(a.dir, seccompagent.SocketName), Metadata: o.Root}
		if err := sysinfoAgent(o.Config, &daemonapi.AdoptReply{Seccomp: agent}); err != nil {
			cl.Close()
			return nil, fmt.Errorf("container %s: %w", o.ID, err)
		}
	}
	go func() {
		a.reply = &daemonapi.AdoptReply{}
		hello, err := cl.Greet(daemonapi.OpAdopt, &daemonapi.Adopt{Container: daemonapi.Container{Root: o.Root, ID: o.ID}, Features: f}, a.reply)
		cl.Close()
		if a.err = errors.Join(hello, err); a.err != nil {
			a.err = fmt.Errorf("container %s: %w", o.ID, a.err)
		}
		close(a.answered)
		if a.err == nil {
			a.made = cloneAll(a.reply)
		}
		close(a.cloned)
	}()
	o.Served = func(cfg *config.Config) (container.Made, error) {
		defer steplog.Step("create: the daemon's answer")()
		<-a.answered
		if a.err != nil {
			return container.Made{}, a.err
		}
		a.gen = a.reply.Gen
		made := a.madeAt(len(cfg.Mounts))
		if !sameAgent(agent, a.reply.Seccomp) {
			return made, fmt.Errorf("container %s: the lkc daemon's seccomp agent (%+v) is not the one lkc.conf names (%+v): run lkc daemon reload", o.ID, a.reply.Seccomp, agent)
		}
		cfg.Mounts = append(cfg.Mounts, procMounts(a.reply)...)
		return made, nil
	}
	return a, nil
}

// adoptFirst is adopt waiting for the daemon's answer before create
// starts init; the view's files are cloned while init starts, as adopt's.
func adoptFirst(o *container.CreateOpts, conf *hostconf.Conf, f hostconf.Features) (*adoption, error) {
	reply, err := adoptCall(conf, o.Root, o.ID, f)
	if err != nil {
		return nil, err
	}
	a := &adoption{dir: conf.DaemonDirectory(), root: o.Root, id: o.ID, gen: reply.Gen, reply: reply, cloned: make(chan struct{})}
	if err := sysinfoAgent(o.Config, reply); err != nil {
		a.release()
		return nil, fmt.Errorf("container %s: %w", o.ID, err)
	}
	go func() {
		a.made = cloneAll(reply)
		close(a.cloned)
	}()
	o.Served = func(cfg *config.Config) (container.Made, error) {
		made := a.madeAt(len(cfg.Mounts))
		cfg.Mounts = append(cfg.Mounts, procMounts(reply)...)
		return made, nil
	}
	return a, nil
}

// madeAt returns the view's mounts being made, for a config whose first
// n mounts are its own.
func (a *adoption) madeAt(n int) container.Made {
	m := container.Made{Wait: func() map[int]*os.File {
		<-a.cloned
		made := map[int]*os.File{}
		for i, f := range a.made {
			if f != nil {
				made[n+i] = f
			}
		}
		return made
	}}
	for i := range procMounts(a.reply) {
		m.At = append(m.At, n+i)
	}
	return m
}

// cloneAll makes a detached mount of each source of r's mounts
// (procMounts) with its flags, as init would bind it, while create goes on
// (init's start, the cgroup, then init's namespaces and its own mounts);
// init then moves them into the container (Served), and neither walks the
// daemon's FUSE view nor asks its worker anything. Each first look-up of
// a name there is a round trip to the worker, which renders nothing for
// it (the container's first read renders its own): a daemon that names
// every file in the slot's directory itself (r.Flat) has them all
// instantiated by one listing of it; else eachSource lists each directory
// of several sources and walks to the others. A source that cannot be
// cloned gets nil, and init binds it.
func cloneAll(r *daemonapi.AdoptReply) []*os.File {
	ms := procMounts(r)
	made := make([]*os.File, len(ms))
	clone := func(i, dir int, name string) {
		if f, err := mount.Clone(dir, name, ms[i].Flags); err == nil {
			made[i] = f // else init binds it
		}
	}
	if len(r.Flat) != len(ms) || len(ms) == 0 {
		eachSource(ms, clone)
		return made
	}
	dir, err := openSourceDir(r.ProcDir, true)
	if err != nil {
		return made
	}
	defer unix.Close(dir)
	for i, name := range r.Flat {
		clone(i, dir, name)
	}
	return made
}

// eachSource calls f with the index of each mount of ms, a handle of its
// source's directory and the source's name there, opening each directory
// once. A directory with more than one source is listed first: one
// READDIRPLUS of the daemon's view instantiates every name in it, where
// each source would cost a LOOKUP (a round trip to the worker). A source
// whose directory cannot be opened is skipped.
func eachSource(ms []config.Mount, f func(i, dir int, name string)) {
	sources := map[string]int{}
	for _, m := range ms {
		dir, _ := filepath.Split(m.Source)
		sources[dir]++
	}
	dirs := map[string]int{}
	for i, m := range ms {
		dir, name := filepath.Split(m.Source)
		fd, ok := dirs[dir]
		if !ok {
			var err error
			if fd, err = openSourceDir(dir, sources[dir] > 1); err != nil {
				continue
			}
			defer unix.Close(fd)
			dirs[dir] = fd
		}
		f(i, fd, name)
	}
}

// openSourceDir opens directory dir, listed once when list is set (an
// O_PATH handle otherwise: nothing is asked of its file system but the
// walk).
func openSourceDir(dir string, list bool) (int, error) {
	if !list {
		return unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	// One buffer holds the view's few names; whatever is not listed is
	// looked up as it is reached.
	unix.Getdents(fd, make([]byte, 4096))
	return fd, nil
}

// viewMounted says whether the daemon in dir has its /proc view mounted,
// from the attributes the kernel has (a FUSE mount's server is not asked).
func viewMounted(dir string) bool {
	var st unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, filepath.Join(dir, "proc"), unix.AT_STATX_DONT_SYNC|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE, &st)
	return err == nil && st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
}

// sameAgent says whether two sysinfo listeners (nil: none) are one.
func sameAgent(a, b *daemonapi.SeccompReply) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// adoptConfig is adopt for container id under root with config cfg (the
// restores'), returning the release their failure paths run.
func adoptConfig(root, id string, cfg *config.Config) (release func(), err error) {
	a, err := adoptIn(root, id, cfg)
	if err != nil {
		return nil, err
	}
	return a.release, nil
}

// wanted returns the host configuration and the daemon features the
// config of container id under root asks for (none for an id that exists:
// create refuses it, and the adopt of the container that has it stands).
func wanted(root, id string, cfg *config.Config) (*hostconf.Conf, hostconf.Features, error) {
	conf, err := hostconf.Load()
	if err != nil {
		return nil, hostconf.Features{}, err
	}
	f, err := conf.Features(cfg.Annotations)
	if err == nil {
		_, err = oompolicy.Resolve(conf, cfg.Annotations) // the values past their shape
	}
	if err != nil {
		return nil, hostconf.Features{}, err
	}
	if _, err := os.Stat(filepath.Join(root, id)); f.Any() && err == nil {
		return conf, hostconf.Features{}, nil
	}
	return conf, f, nil
}

// adoptCall asks the daemon of conf to serve container id under root with
// features f, starting the daemon where allowed.
func adoptCall(conf *hostconf.Conf, root, id string, f hostconf.Features) (*daemonapi.AdoptReply, error) {
	defer steplog.Step("adopt")()
	reply := &daemonapi.AdoptReply{}
	cl, err := daemonapi.EnsureCall(conf, daemonapi.OpAdopt, &daemonapi.Adopt{Container: daemonapi.Container{Root: root, ID: id}, Features: f}, reply)
	if cl == nil {
		return nil, fmt.Errorf("container %s: %s needs the lkc daemon: %w", id, f.Missing(hostconf.Features{}), err)
	}
	cl.Close()
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	return reply, nil
}

// adoptIn is adopt for a restore of container id under root with config
// cfg (whose mounts CRIU makes), waiting for the answer, which adds the
// mounts of what the daemon serves to cfg.
func adoptIn(root, id string, cfg *config.Config) (*adoption, error) {
	conf, f, err := wanted(root, id, cfg)
	if err != nil || !f.Any() {
		return &adoption{}, err
	}
	if f.Proc {
		keepBootAtStart(cfg)
	}
	reply, err := adoptCall(conf, root, id, f)
	if err != nil {
		return nil, err
	}
	a := &adoption{dir: conf.DaemonDirectory(), root: root, id: id, gen: reply.Gen}
	if err := sysinfoAgent(cfg, reply); err != nil {
		a.release()
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	ms := procMounts(reply)
	go lookUp(ms)
	cfg.Mounts = append(cfg.Mounts, ms...)
	return a, nil
}

// lookUp has the kernel look up the sources of ms while create goes on
// (starting init takes milliseconds), so that init, which binds them, finds
// their names cached: each first look-up of a name in the daemon's FUSE
// view is a round trip to its worker, and the kernel keeps names (of every
// mount namespace) for a second. Nothing waits for it: init looks up what
// is not cached yet.
func lookUp(ms []config.Mount) {
	eachSource(ms, func(_, dir int, name string) {
		var st unix.Statx_t
		unix.Statx(dir, name, unix.AT_STATX_DONT_SYNC|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE, &st)
	})
}

// procMounts bind-mounts each virtual file the daemon serves for the
// container over the container's own (/proc/meminfo, ...). They come after
// the config's mounts, so over its /proc and /sys, and before the masked
// and read-only paths, as LXC's lxcfs hook places them.
func procMounts(r *daemonapi.AdoptReply) []config.Mount {
	if r.ProcDir == "" {
		return nil
	}
	ms := make([]config.Mount, 0, len(r.Files))
	for _, f := range r.Files {
		ms = append(ms, config.Mount{
			Source:      filepath.Join(r.ProcDir, f),
			Destination: "/" + f,
			Type:        "bind",
			Flags:       unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC,
		})
	}
	return ms
}

// sysinfoAgent sends the container's sysinfo(2) calls to the seccomp agent
// the daemon named, adding the rule to its seccomp profile (docs/daemon.md).
func sysinfoAgent(cfg *config.Config, r *daemonapi.AdoptReply) error {
	if r.Seccomp == nil {
		return nil
	}
	sc, err := config.WithSysinfoNotify(cfg.Seccomp, r.Seccomp.Path, r.Seccomp.Metadata)
	if err != nil {
		return fmt.Errorf("%s=virtual: %w", hostconf.AnnotationProc, err)
	}
	cfg.Seccomp = sc
	return nil
}

// releaseFrom tells the daemon in dir, if one runs, to stop serving a
// container (of generation gen; 0: whichever it serves). Without one
// there is nothing to do: a daemon that starts later frees the slots of
// containers that are gone.
func releaseFrom(dir, root, id string, gen uint64) {
	defer steplog.Step("release")()
	cl, err := daemonapi.Dial(dir)
	if err != nil {
		return
	}
	defer cl.Close()
	cl.Release(root, id, gen)
}

// servedBy returns the daemon directory when a daemon runs and the
// container's record asks for a daemon feature ("" otherwise: then its
// delete never touches the daemon). A host without a daemon pays one stat.
func servedBy(root, id string) string {
	conf, err := hostconf.Load()
	if err != nil {
		return ""
	}
	dir := conf.DaemonDirectory()
	if _, err := os.Stat(filepath.Join(dir, daemonapi.SocketName)); err != nil {
		return ""
	}
	d, err := state.Peek(root, id)
	if err != nil {
		return ""
	}
	defer d.Close()
	s, err := d.Load()
	if err != nil || s.Config == nil {
		return ""
	}
	if f, err := conf.Features(s.Config.Annotations); err != nil || !f.Any() {
		return ""
	}
	return dir
}
