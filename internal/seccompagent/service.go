package seccompagent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/procfs"
	"github.com/lkc-containers/lkc/internal/registry"
	"github.com/lkc-containers/lkc/internal/service"
)

// Service runs the agent in lkc daemon's worker.
type Service struct {
	dir        string
	sysinfo    bool // proc.sysinfo in lkc.conf
	containers Containers
}

// Containers finds a served container by its slot and generation, with
// the load averages its sampler keeps: the /proc view's (procview), so
// sysinfo's loads are the ones /proc/loadavg shows and a call reads no
// state file.
type Containers interface {
	Container(slot int, gen uint64) (*procfs.Container, bool)
}

// NewService returns the seccomp agent service; containers may be nil
// (sysinfo then reads each container's state and reports no load).
func NewService(containers Containers) *Service { return &Service{containers: containers} }

// Name implements service.Service.
func (s *Service) Name() string { return "seccomp" }

// Start takes the listeners and journal the holder kept and serves them.
// During an upgrade it starts only once the old worker has exited: two
// agents polling one listener would leave the slower one blocked in a
// receive the faster one already took.
func (s *Service) Start(ctx context.Context, d *service.Deps) error {
	s.dir, s.sysinfo = d.Dir, d.Conf.ProcSysinfo
	held := map[string]*os.File{}
	for k, f := range d.Taken {
		if k == "journal" || k == SocketKey || strings.HasPrefix(k, "seccomp/") {
			held[k] = f
			delete(d.Taken, k)
		}
	}
	cfg := Config{Dir: d.Dir, Resolver: registryResolver{d.Registry, s.containers}, Store: d.Store, Held: held, Logf: d.Logf}
	if d.Predecessor == 0 {
		a, err := New(cfg)
		if err != nil {
			return err
		}
		go serve(ctx, a, d.Logf)
		return nil
	}
	pidfd, err := unix.PidfdOpen(d.Predecessor, 0)
	if err != nil {
		return fmt.Errorf("watching the old worker %d: %w", d.Predecessor, err)
	}
	go func() {
		defer unix.Close(pidfd)
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				break
			}
		}
		a, err := New(cfg)
		if err != nil {
			d.Logf("seccomp agent: %v", err)
			return
		}
		serve(ctx, a, d.Logf)
	}()
	return nil
}

func serve(ctx context.Context, a *Agent, logf func(string, ...any)) {
	defer a.Close()
	if err := a.Serve(ctx); err != nil && ctx.Err() == nil {
		logf("seccomp agent: %v", err)
	}
}

// Reload takes proc.sysinfo from c for the containers adopted from now
// on: the CLI starts a container's init with the listener its own lkc.conf
// names and refuses an answer that differs, so a changed proc.sysinfo
// must reach the worker by `lkc daemon reload`. Preconditions: called,
// as Adopt is, under the worker's adopt lock.
func (s *Service) Reload(c *hostconf.Conf) error {
	s.sysinfo = c.ProcSysinfo
	return nil
}

// Adopt names the agent's socket as the container's sysinfo listener.
// The /proc view's service provides the feature; this one adds sysinfo.
func (s *Service) Adopt(e *registry.Entry, reply *daemonapi.AdoptReply) error {
	if e.Features.Proc && s.sysinfo {
		reply.Seccomp = &daemonapi.SeccompReply{Path: filepath.Join(s.dir, SocketName), Metadata: e.Root}
	}
	return nil
}

// Release has nothing to do: a container's listeners go when its
// processes do (POLLHUP).
func (s *Service) Release(*registry.Entry) {}

// registryResolver finds a listener's container in the daemon's registry.
// A listener is named "<slot>.<gen>": the registry keeps slots across
// worker restarts, and a reused slot (new generation) never answers for
// the container that had it.
type registryResolver struct {
	reg        *registry.Registry
	containers Containers
}

func (r registryResolver) Bind(m Message) (string, error) {
	for _, e := range r.reg.Entries() {
		if e.Root == m.Metadata && e.ID == m.ID {
			return fmt.Sprintf("%d.%d", e.Slot, e.Gen), nil
		}
	}
	return "", fmt.Errorf("container %s under %q: not adopted", m.ID, m.Metadata)
}

func (r registryResolver) Sysinfo(name string, out *unix.Sysinfo_t) error {
	var slot int
	var gen uint64
	if _, err := fmt.Sscanf(name, "%d.%d", &slot, &gen); err != nil {
		return fmt.Errorf("listener %s: %w", name, err)
	}
	if r.containers != nil {
		if c, ok := r.containers.Container(slot, gen); ok {
			return procfs.Sysinfo(c, out)
		}
	}
	e := r.reg.BySlot(slot, gen)
	if e == nil {
		return fmt.Errorf("slot %s: no container", name)
	}
	st, err := e.LoadState()
	if err != nil {
		return err
	}
	c, err := procfs.ContainerFromState(st)
	if err != nil {
		return err
	}
	return procfs.Sysinfo(c, out)
}
