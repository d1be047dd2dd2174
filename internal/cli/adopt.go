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

// adopt asks the daemon to serve a container being created whose
// annotations (or the host defaults) ask for a daemon feature, starting
// the daemon where docs/daemon.md allows. A container that asks for none
// never touches the daemon. It returns the release that create's failure
// paths run.
func adopt(o *container.CreateOpts) (release func(), err error) {
	return adoptConfig(o.Root, o.ID, o.Config)
}

// adoptConfig is adopt for container id under root with config cfg, to
// which it adds the mounts of what the daemon serves (restore calls it too).
func adoptConfig(root, id string, cfg *config.Config) (release func(), err error) {
	conf, err := hostconf.Load()
	if err != nil {
		return nil, err
	}
	f, err := conf.Features(cfg.Annotations)
	if err == nil {
		_, err = oompolicy.Resolve(conf, cfg.Annotations) // the values past their shape
	}
	if err != nil || !f.Any() {
		return func() {}, err
	}
	if _, err := os.Stat(filepath.Join(root, id)); err == nil {
		return func() {}, nil // create refuses the existing id; its adopt stands
	}
	asked := f.Missing(hostconf.Features{})
	defer steplog.Step("adopt")()
	cl, err := daemonapi.Ensure(conf)
	if err != nil {
		return nil, fmt.Errorf("container %s: %s needs the lkc daemon: %w", id, asked, err)
	}
	defer cl.Close()
	reply, err := cl.Adopt(root, id, f)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	release = func() { releaseFrom(conf.DaemonDirectory(), root, id) }
	if err := sysinfoAgent(cfg, reply); err != nil {
		release()
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	cfg.Mounts = append(cfg.Mounts, procMounts(reply)...)
	return release, nil
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
// container. Without one there is nothing to do: a daemon that starts
// later frees the slots of containers that are gone.
func releaseFrom(dir, root, id string) {
	defer steplog.Step("release")()
	cl, err := daemonapi.Dial(dir)
	if err != nil {
		return
	}
	defer cl.Close()
	cl.Release(root, id)
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
