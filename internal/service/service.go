// Package service is the boundary between the daemon's worker and the
// services it runs (the /proc view, the seccomp agent, later OOM policies
// and the rules engine): the interface each implements and what the worker
// gives them. It lives apart from internal/daemon so that services do not
// import the package that wires them.
package service

import (
	"context"
	"os"

	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/fdstore"
	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/registry"
)

// Service is one service of the worker.
type Service interface {
	// Name names the service in `lkc daemon status` and the log.
	Name() string
	// Start rebuilds the service's state (from the kernel, d.Taken and
	// the registry: it is crash-only) and starts serving; it returns once
	// the service serves. ctx ends when the worker drains.
	Start(ctx context.Context, d *Deps) error
	// Adopt takes on a container: the service fills its part of reply and
	// sets in reply.Features each feature it provides. The worker refuses
	// the adopt (and releases it from every service) when a feature the
	// container asks for is left unset.
	Adopt(e *registry.Entry, reply *daemonapi.AdoptReply) error
	// Release stops serving a container.
	Release(e *registry.Entry)
}

// Deps is what the worker gives its services.
type Deps struct {
	Registry *registry.Registry
	// Store deposits fds in the holder (keys: "fuse", "proc-sizes", "proc-inval",
	// "seccomp/<slot>/<n>", "journal"; "control" is the worker's own).
	Store *fdstore.Client
	// Taken are the fds the holder kept, by key, at this worker's start. A
	// service removes from the map the keys it takes (it owns those
	// files); the worker closes the rest once every service started.
	Taken map[string]*os.File
	Dir   string // the daemon's run directory
	// Conf is the host configuration at start (reload replaces it for
	// later adopts; a service that caches from it reads it in Start).
	Conf *hostconf.Conf
	Logf func(format string, args ...any)
	// Predecessor is, during an upgrade, the pid of the old worker, which
	// still serves until this worker is ready and then drains (0: none).
	// A service that reclaims what a dead server had read (FUSE's
	// NOTIFY_RESEND) does so once that process has exited, not before:
	// while it runs it answers what it read.
	Predecessor int
}
