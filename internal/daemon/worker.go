// Package daemon is the worker of `lkc daemon`: it reads the host
// configuration, takes the fds its holder kept, rebuilds the registry and
// wires the services to it and to the control protocol. Its one reason to
// change is which services run and in which order they start; the work is
// theirs (internal/service).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/fdstore"
	"github.com/lkc-containers/lkc/internal/groups"
	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/metrics"
	"github.com/lkc-containers/lkc/internal/netgc"
	"github.com/lkc-containers/lkc/internal/oompolicy"
	"github.com/lkc-containers/lkc/internal/procview"
	"github.com/lkc-containers/lkc/internal/registry"
	"github.com/lkc-containers/lkc/internal/rulesengine"
	"github.com/lkc-containers/lkc/internal/seccompagent"
	"github.com/lkc-containers/lkc/internal/service"
)

// slowStart is how long a service may take to start before the log says
// so: a starter gives up after daemonapi.StartTimeout in all.
const slowStart = 500 * time.Millisecond

// services are the services the worker runs, in start order.
var procView = procview.New()

var services = []service.Service{procView, seccompagent.NewService(procView), &groups.Service{}, &metrics.Service{}, rulesengine.New(), oompolicy.New(), &netgc.Service{}}

// Options are what the holder gives a worker.
type Options struct {
	Dir       string   // the run directory
	HolderPid int      // the holder, watched by pidfd
	Holder    *os.File // the holder connection (fd 3)
	Ready     *os.File // the readiness pipe of a --detach start, or nil
	Build     string   // the build id hello answers
	// Predecessor is an upgrade's old worker (0: none), see service.Deps.
	Predecessor int
}

// worker is one running worker.
type worker struct {
	Options
	store    *fdstore.Client
	reg      *registry.Registry
	deps     *service.Deps
	services []service.Service
	cancel   context.CancelFunc
	srv      *daemonapi.Server
	logf     func(string, ...any)
	// adoptMu serializes adopt, release and reload, so services see one
	// at a time.
	adoptMu sync.Mutex
}

// Run runs a worker until it is stopped, upgraded away or signalled
// (SIGTERM drains it: control connections finish their request).
func Run(o Options) error {
	t0 := time.Now()
	w := &worker{Options: o, services: services}
	w.logf = log.New(os.Stderr, fmt.Sprintf("lkc worker %d: ", os.Getpid()), log.LstdFlags|log.Lmicroseconds).Printf
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	w.cancel = cancel
	l, err := w.start(ctx)
	if err != nil {
		if o.Ready != nil {
			fmt.Fprintf(o.Ready, "%v\n", err)
		}
		return err
	}
	if o.Ready != nil {
		o.Ready.WriteString("ok\n")
		o.Ready.Close()
	}
	w.logf("serving on %s (start-up %v)", filepath.Join(o.Dir, daemonapi.SocketName), time.Since(t0).Round(time.Millisecond))
	w.srv = &daemonapi.Server{Build: o.Build, Handle: w.handle, Logf: w.logf}
	err = w.srv.Serve(ctx, l)
	if stopping, _ := w.store.Stopping(); stopping {
		// SIGTERM from a holder that stops (its own SIGTERM, systemd's
		// stop): the daemon ends for good, like `lkc daemon stop`.
		w.stopServices()
	}
	w.cancel()
	for _, s := range w.services {
		if d, ok := s.(interface{ Wait() }); ok {
			d.Wait()
		}
	}
	w.logf("exiting")
	return err
}

// start does the worker's start-up in the order of docs/daemon.md and
// tells the holder it serves.
func (w *worker) start(ctx context.Context) (*net.UnixListener, error) {
	conf, err := hostconf.Load()
	if err != nil {
		return nil, err
	}
	if w.store, err = fdstore.NewClient(w.Holder); err != nil {
		return nil, err
	}
	taken, err := w.store.Take()
	if err != nil {
		return nil, err
	}
	defer closeAll(taken)
	if w.reg, err = registry.Open(w.Dir); err != nil {
		return nil, err
	}
	ctrl := taken["control"]
	delete(taken, "control") // the worker's, not a service's
	w.deps = &service.Deps{Registry: w.reg, Store: w.store, Taken: taken, Dir: w.Dir, Conf: conf, Logf: w.logf,
		Predecessor: w.Predecessor}
	for _, s := range w.services {
		t0 := time.Now()
		if err := s.Start(ctx, w.deps); err != nil {
			ctrl.Close()
			return nil, fmt.Errorf("starting service %s: %w", s.Name(), err)
		}
		if d := time.Since(t0); d > slowStart {
			w.logf("service %s took %v to start", s.Name(), d.Round(time.Millisecond))
		}
	}
	// The control socket comes last: a worker that cannot start makes no
	// socket for clients to wait on.
	l, err := w.control(ctrl)
	if err != nil {
		return nil, err
	}
	w.store.WatchHolder(ctx, w.HolderPid, w.logf)
	go w.watchRunDir(ctx)
	go w.reloadOnHUP(ctx)
	if err := fdstore.WritePid(w.Dir, "worker.pid"); err != nil {
		return nil, err
	}
	return l, w.store.Ready()
}

// control returns the control socket's listener: held, the one the holder
// kept (so connections queue in its backlog while no worker runs), else
// a new one, given to the holder.
func (w *worker) control(held *os.File) (*net.UnixListener, error) {
	if f := held; f != nil {
		defer f.Close()
		l, err := net.FileListener(f)
		if err != nil {
			return nil, fmt.Errorf("control socket from the holder: %w", err)
		}
		return l.(*net.UnixListener), nil
	}
	path := filepath.Join(w.Dir, daemonapi.SocketName)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale %s: %w", path, err)
	}
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	l.SetUnlinkOnClose(false) // the holder keeps serving it
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	f, err := l.File()
	if err == nil {
		err = w.store.Put("control", f)
		f.Close()
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("depositing the control socket: %w", err)
	}
	return l, nil
}

func closeAll(m map[string]*os.File) {
	for k, f := range m {
		f.Close()
		delete(m, k)
	}
}
