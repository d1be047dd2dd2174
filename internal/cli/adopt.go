package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/container"
	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/oompolicy"
	"github.com/lkc-containers/lkc/internal/state"
	"github.com/lkc-containers/lkc/internal/steplog"
)

// adoption is a container the daemon serves (or one that asks for
// nothing: then its methods do nothing).
type adoption struct {
	dir, root, id string // dir: the daemon's directory, "" when not adopted
	gen           uint64
}

// release tells the daemon to stop serving the container and waits for
// it: create's and restore's failure paths, after which callers (and
// tests) may look at the daemon's state.
func (a *adoption) release() {
	if a.dir != "" {
		releaseFrom(a.dir, a.root, a.id, a.gen)
	}
}

// releaseLater tells the daemon to stop serving the container, which is
// gone, without waiting: the end of `lkc run`. The daemon serves the
// request after lkc has exited; it names the adopt's generation, so it
// cannot release the next container of the same id if that is adopted
// first.
func (a *adoption) releaseLater() {
	if a.dir == "" {
		return
	}
	defer steplog.Step("release")()
	daemonapi.Post(a.dir, daemonapi.OpRelease, &daemonapi.Release{Container: daemonapi.Container{Root: a.root, ID: a.id}, Gen: a.gen})
}

// adopt asks the daemon to serve a container being created whose
// annotations (or the host defaults) ask for a daemon feature, starting
// the daemon where docs/daemon.md allows. A container that asks for none
// never touches the daemon.
func adopt(o *container.CreateOpts) (*adoption, error) {
	return adoptIn(o.Root, o.ID, o.Config)
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

// adoptIn is adopt for container id under root with config cfg, to which
// it adds the mounts of what the daemon serves.
func adoptIn(root, id string, cfg *config.Config) (*adoption, error) {
	conf, err := hostconf.Load()
	if err != nil {
		return nil, err
	}
	f, err := conf.Features(cfg.Annotations)
	if err == nil {
		_, err = oompolicy.Resolve(conf, cfg.Annotations) // the values past their shape
	}
	if err != nil {
		return nil, err
	}
	if !f.Any() {
		return &adoption{}, nil
	}
	if _, err := os.Stat(filepath.Join(root, id)); err == nil {
		return &adoption{}, nil // create refuses the existing id; its adopt stands
	}
	asked := f.Missing(hostconf.Features{})
	defer steplog.Step("adopt")()
	reply := &daemonapi.AdoptReply{}
	cl, err := daemonapi.EnsureCall(conf, daemonapi.OpAdopt, &daemonapi.Adopt{Container: daemonapi.Container{Root: root, ID: id}, Features: f}, reply)
	if cl == nil {
		return nil, fmt.Errorf("container %s: %s needs the lkc daemon: %w", id, asked, err)
	}
	defer cl.Close()
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
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
// their names cached: each first LOOKUP of a name in the daemon's FUSE view
// is a round trip to its worker, which answers a file's with its size, and
// the kernel keeps names (of every mount namespace) for a second. A source
// looked up before the container has a state gets the host's file as a
// stand-in the kernel does not cache: the container's first read renders
// its own. Nothing waits for it: init looks up what is not cached yet.
// Each directory is walked once: the slot's, which the server keeps
// volatile, costs a LOOKUP and a GETATTR at each walk.
func lookUp(ms []config.Mount) {
	dirs := map[string]int{}
	for _, m := range ms {
		dir, name := filepath.Split(m.Source)
		fd, ok := dirs[dir]
		if !ok {
			var err error
			if fd, err = unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
				continue
			}
			defer unix.Close(fd)
			dirs[dir] = fd
		}
		var st unix.Statx_t
		unix.Statx(fd, name, unix.AT_STATX_DONT_SYNC|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE, &st)
	}
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
