package metrics

import (
	"bytes"
	"context"
	"fmt"
	"net"

	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/registry"
	"github.com/lkc-containers/lkc/internal/service"
	"github.com/lkc-containers/lkc/internal/stats"
)

// storeKey is the fd store's key of the listening socket. The holder
// keeps it, so a scrape that arrives while the worker restarts or is
// upgraded waits in the backlog, and a successor worker serves the same
// socket instead of racing its predecessor for the port.
const storeKey = "metrics"

// Service serves /metrics when lkc.conf sets metrics.listen.
type Service struct {
	roots []string
	reg   *registry.Registry
	logf  func(string, ...any)
}

// Name is the service's name in the log.
func (*Service) Name() string { return "metrics" }

// Start listens on metrics.listen (or takes the socket its predecessor
// left in the holder when it has the same address) and serves until ctx
// ends. Without metrics.listen it does nothing, and drops a socket an
// earlier configuration left.
func (m *Service) Start(ctx context.Context, d *service.Deps) error {
	m.roots, m.reg, m.logf = d.Conf.MetricsRoots, d.Registry, d.Logf
	addr := d.Conf.MetricsListen
	l, err := m.listener(addr, d)
	if err != nil || l == nil {
		return err
	}
	srv := newServer(l, "/metrics", m.scrape, m.logf)
	go srv.serve()
	context.AfterFunc(ctx, srv.close)
	d.Logf("metrics: serving http://%s/metrics", l.Addr())
	return nil
}

// listener returns the socket for addr: the held one when it listens on
// addr, else a new one, which it deposits in the holder.
func (m *Service) listener(addr string, d *service.Deps) (net.Listener, error) {
	held := d.Taken[storeKey]
	delete(d.Taken, storeKey)
	if held != nil {
		l, err := net.FileListener(held)
		held.Close()
		if err == nil && addr != "" && sameAddr(l.Addr(), addr) {
			return l, nil
		}
		if l != nil {
			l.Close()
		}
		if err := d.Store.Drop(storeKey); err != nil {
			return nil, err
		}
	}
	if addr == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %s: %w", addr, err)
	}
	f, err := l.(*net.TCPListener).File()
	if err == nil {
		err = d.Store.Put(storeKey, f)
		f.Close()
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("metrics.listen %s: keeping the socket in the holder: %w", addr, err)
	}
	return l, nil
}

// sameAddr says whether a listening socket's address is what addr asks
// (a port of 0 asks for any, so it never matches a kept socket).
func sameAddr(got net.Addr, addr string) bool {
	want, err := net.ResolveTCPAddr("tcp", addr)
	tcp, ok := got.(*net.TCPAddr)
	return err == nil && ok && want.Port != 0 && want.Port == tcp.Port &&
		(want.IP == nil && tcp.IP.IsUnspecified() || want.IP.Equal(tcp.IP))
}

// Adopt has nothing to do: /metrics covers every container of its roots,
// adopted or not.
func (*Service) Adopt(*registry.Entry, *daemonapi.AdoptReply) error { return nil }

// Release has nothing to do either.
func (*Service) Release(*registry.Entry) {}

// scrape renders a fresh read of every container of metrics.roots and
// of the roots of the containers the daemon serves.
func (m *Service) scrape() []byte {
	var cs []Container
	for _, root := range m.allRoots() {
		r := stats.NewReader(root)
		r.Warn = func(err error) { m.logf("metrics: root %s: left out: %v", root, err) }
		samples, err := r.Read()
		if err != nil {
			m.logf("metrics: root %s: %v", root, err)
			continue
		}
		for _, s := range samples {
			cs = append(cs, Container{Root: root, Sample: s})
		}
	}
	var b bytes.Buffer
	Write(&b, cs) // a bytes.Buffer takes every write
	return b.Bytes()
}

func (m *Service) allRoots() []string {
	seen := map[string]bool{}
	var out []string
	add := func(r string) {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for _, r := range m.roots {
		add(r)
	}
	for _, e := range m.reg.Entries() {
		add(e.Root)
	}
	return out
}
