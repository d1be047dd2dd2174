package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/registry"
	"github.com/lkc-containers/lkc/internal/seccompagent"
)

// handle answers one control request.
func (w *worker) handle(_ context.Context, op string, body json.RawMessage, peer daemonapi.Peer) (any, error) {
	switch op {
	case daemonapi.OpStatus:
		var p daemonapi.StatusPage
		if err := daemonapi.Unbody(body, &p); err != nil {
			return nil, err
		}
		return w.status(p.From)
	case daemonapi.OpAdopt:
		var a daemonapi.Adopt
		if err := daemonapi.Unbody(body, &a); err != nil {
			return nil, err
		}
		w.logf("adopt %s in %s %+v (pid %d)", a.ID, a.Root, a.Features, peer.Pid)
		return w.adopt(&a)
	case daemonapi.OpRelease:
		var r daemonapi.Release
		if err := daemonapi.Unbody(body, &r); err != nil {
			return nil, err
		}
		w.logf("release %s in %s gen %d (pid %d)", r.ID, r.Root, r.Gen, peer.Pid)
		return nil, w.release(r.Root, r.ID, r.Gen)
	case daemonapi.OpReattach:
		var c daemonapi.Container
		if err := daemonapi.Unbody(body, &c); err != nil {
			return nil, err
		}
		return nil, w.reattach(c.Root, c.ID)
	case daemonapi.OpReload:
		w.logf("reload (pid %d)", peer.Pid)
		return nil, w.reload()
	case daemonapi.OpUpgrade:
		var u daemonapi.Upgrade
		if err := daemonapi.Unbody(body, &u); err != nil {
			return nil, err
		}
		w.logf("upgrade to %s (pid %d)", u.Exe, peer.Pid)
		return w.upgrade(u.Exe)
	case daemonapi.OpExplain:
		var x daemonapi.Explain
		if err := daemonapi.Unbody(body, &x); err != nil {
			return nil, err
		}
		return w.explain(x.Pid)
	case daemonapi.OpStop:
		w.logf("stop (pid %d)", peer.Pid)
		return w.stop()
	}
	return nil, daemonapi.Errorf(daemonapi.ClassNotSupported, fmt.Sprintf("unknown operation %q", op))
}

// status answers with the served containers from slot from on, as many
// as fit in one message beside the rest (daemonapi.StatusPage).
func (w *worker) status(from int) (*daemonapi.Status, error) {
	held, err := w.store.Keys()
	if err != nil {
		return nil, err
	}
	s := &daemonapi.Status{Build: w.Build, Version: daemonapi.Version, HolderPid: w.store.HolderPid(),
		WorkerPid: os.Getpid(), Services: []string{}, Held: held, Containers: []daemonapi.Served{}}
	for _, sv := range w.services {
		s.Services = append(s.Services, sv.Name())
		if r, ok := sv.(interface{ RulesStatus() *daemonapi.Rules }); ok {
			s.Rules = r.RulesStatus()
		}
	}
	base, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	room := daemonapi.MaxMessage - len(base) - 256 // the envelope and "next"
	entries := w.reg.Entries()
	slices.SortFunc(entries, func(a, b *registry.Entry) int { return a.Slot - b.Slot })
	for _, e := range entries {
		if e.Slot < from {
			continue
		}
		c := daemonapi.Served{Container: daemonapi.Container{Root: e.Root, ID: e.ID},
			Slot: e.Slot, Gen: e.Gen, Features: e.Features}
		b, err := json.Marshal(&c)
		if err != nil {
			return nil, err
		}
		if room -= len(b) + 1; room < 0 && len(s.Containers) > 0 {
			s.Next = e.Slot
			break
		}
		s.Containers = append(s.Containers, c)
	}
	return s, nil
}

// adopt registers a container and has every service take it on; a
// feature no service provides refuses the adopt and undoes it. The CLI
// adopts a container before its directory exists, so a container of the
// same root and id still served is an earlier one whose release has not
// come yet (`lkc run` does not wait for it): it is released first, and the
// new one gets the slot's next generation, which such a late release does
// not name.
func (w *worker) adopt(a *daemonapi.Adopt) (*daemonapi.AdoptReply, error) {
	w.adoptMu.Lock()
	defer w.adoptMu.Unlock()
	if old := w.reg.Lookup(a.Root, a.ID); old != nil {
		w.logf("adopt %s in %s: releasing its earlier incarnation (gen %d) first", a.ID, a.Root, old.Gen)
		if err := w.releaseLocked(a.Root, a.ID, 0); err != nil {
			return nil, err
		}
	}
	e, err := w.reg.Adopt(a.Root, a.ID, a.Features)
	if err != nil {
		return nil, daemonapi.Errorf(daemonapi.ClassInvalid, err.Error())
	}
	reply := &daemonapi.AdoptReply{Slot: e.Slot, Gen: e.Gen}
	done := 0
	for _, s := range w.services {
		if err = s.Adopt(e, reply); err != nil {
			err = fmt.Errorf("%s: %w", s.Name(), err)
			break
		}
		done++
	}
	if err == nil {
		if m := a.Features.Missing(reply.Features); m != "" {
			err = daemonapi.Errorf(daemonapi.ClassNotSupported, m+" needs a service this lkc daemon does not run")
		}
	}
	if err != nil {
		for _, s := range w.services[:done] {
			s.Release(e)
		}
		w.reg.Release(a.Root, a.ID)
		return nil, err
	}
	return reply, nil
}

// release stops serving the container (of generation gen, unless 0).
func (w *worker) release(root, id string, gen uint64) error {
	w.adoptMu.Lock()
	defer w.adoptMu.Unlock()
	return w.releaseLocked(root, id, gen)
}

// releaseLocked is release. Preconditions: adoptMu held.
func (w *worker) releaseLocked(root, id string, gen uint64) error {
	if e := w.reg.Lookup(root, id); e != nil && gen != 0 && e.Gen != gen {
		return daemonapi.Errorf(daemonapi.ClassNotExist, fmt.Sprintf("release %s in %s: generation %d is gone (the daemon serves %d)", id, root, gen, e.Gen))
	}
	e, err := w.reg.Release(root, id)
	if errors.Is(err, registry.ErrNotServed) {
		return daemonapi.Errorf(daemonapi.ClassNotExist, err.Error())
	}
	if err != nil {
		return err
	}
	for _, s := range w.services {
		s.Release(e)
	}
	return nil
}

// reattach answers once every service serves the container again
// (daemonapi.OpReattach). The seccomp agent accepts from the worker's
// start on (before the control socket), so only services with a Reattach
// have something to wait for.
func (w *worker) reattach(root, id string) error {
	e := w.reg.Lookup(root, id)
	if e == nil {
		return daemonapi.Errorf(daemonapi.ClassNotExist, fmt.Sprintf("container %s in %s: not served by this daemon", id, root))
	}
	for _, s := range w.services {
		if r, ok := s.(interface{ Reattach(*registry.Entry) error }); ok {
			if err := r.Reattach(e); err != nil {
				return fmt.Errorf("%s: %w", s.Name(), err)
			}
		}
	}
	return nil
}

// reload reads lkc.conf again; a file that does not parse keeps the old
// configuration.
func (w *worker) reload() error {
	conf, err := hostconf.Load()
	if err != nil {
		return daemonapi.Errorf(daemonapi.ClassInvalid, err.Error()+" (the daemon keeps its configuration)")
	}
	w.adoptMu.Lock()
	defer w.adoptMu.Unlock()
	w.deps.Conf = conf
	for _, s := range w.services {
		if r, ok := s.(interface{ Reload(*hostconf.Conf) error }); ok {
			if err := r.Reload(conf); err != nil {
				return daemonapi.Errorf(daemonapi.ClassInvalid, fmt.Sprintf("%s: %v", s.Name(), err))
			}
		}
	}
	return nil
}

// reloadOnHUP reloads on SIGHUP, as cgrulesengd does.
func (w *worker) reloadOnHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			w.logf("reload (SIGHUP)")
			if err := w.reload(); err != nil {
				w.logf("reload: %v", err)
			}
		}
	}
}

// explain asks the service that places processes by rules.
func (w *worker) explain(pid int) (*daemonapi.ExplainReply, error) {
	for _, s := range w.services {
		if x, ok := s.(interface {
			Explain(int) (*daemonapi.ExplainReply, error)
		}); ok {
			return x.Explain(pid)
		}
	}
	return nil, daemonapi.Errorf(daemonapi.ClassNotSupported, "this lkc daemon runs no rules engine")
}

// upgrade asks the holder to re-execute exe; it answers once exe's worker
// serves and this worker accepts no more connection (the two share the
// held socket), so that every connection after the answer reaches the
// new worker; then this worker drains and exits.
func (w *worker) upgrade(exe string) (*daemonapi.UpgradeReply, error) {
	pid, err := w.store.Upgrade(exe)
	if err != nil {
		return nil, daemonapi.Errorf(daemonapi.ClassInvalid, err.Error())
	}
	w.cancel()
	w.srv.StopAccepting()
	return &daemonapi.UpgradeReply{WorkerPid: pid}, nil
}

// stop makes the holder exit with this worker, which drains and exits;
// the socket and pid files go first, so that new clients see no daemon.
func (w *worker) stop() (*daemonapi.StopReply, error) {
	holder, err := w.store.Stop()
	if err != nil {
		return nil, err
	}
	// seccomp.sock too: a runtime connecting from now on would wait in
	// the backlog of an agent that is going, then find its connection
	// reset (EPIPE) as the last copy of the listener closes.
	for _, name := range []string{daemonapi.SocketName, seccompagent.SocketName, "worker.pid", "holder.pid"} {
		os.Remove(filepath.Join(w.Dir, name))
	}
	w.stopServices()
	w.cancel()
	return &daemonapi.StopReply{HolderPid: holder, WorkerPid: os.Getpid()}, nil
}

// stopServices tells the services with a Stop that the daemon ends for
// good (not a crash or an upgrade: then the holder keeps their fds).
func (w *worker) stopServices() {
	for _, s := range w.services {
		if st, ok := s.(interface{ Stop() }); ok {
			st.Stop()
		}
	}
}
