// Package netgc is the daemon's netgc service: at every worker start it
// collects the CNI attachments of containers that are gone
// (network.Collect), so that leases, veths and rules left by state
// directories a reboot or a hand took away are given back without anyone
// running `lkc network gc`. The daemon's start is the point a reboot goes
// through (its systemd unit, the README's set-up), and the collection is
// crash-only like the rest: a worker killed in the middle leaves the
// attachments it had not reached cached, and the next start collects them.
package netgc

import (
	"context"
	"sync"

	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/network"
	"github.com/lkc-containers/lkc/internal/registry"
	"github.com/lkc-containers/lkc/internal/service"
)

// Service is the netgc service. It serves no container.
type Service struct {
	wg sync.WaitGroup
}

// Name implements service.Service.
func (*Service) Name() string { return "netgc" }

// Start collects in the background: the DEL of each stale attachment runs
// the network's plugins, which must not hold up the other services or
// the control socket. It logs what it collected, when anything was stale,
// and each failure; ctx ending (the worker drains) stops it between two
// attachments.
func (s *Service) Start(ctx context.Context, d *service.Deps) error {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c, err := network.Collect(ctx, network.CacheDir())
		if c != nil && (len(c.Removed) > 0 || c.Failed > 0 || len(c.GC) > 0) {
			d.Logf("netgc: %s", c)
		}
		if err != nil && ctx.Err() == nil {
			d.Logf("netgc: %v", err)
		}
	}()
	return nil
}

// Wait returns once the collection ended, so a draining worker does not
// exit in the middle of a plugin's DEL.
func (s *Service) Wait() { s.wg.Wait() }

// Adopt implements service.Service: netgc provides no feature.
func (*Service) Adopt(*registry.Entry, *daemonapi.AdoptReply) error { return nil }

// Release implements service.Service.
func (*Service) Release(*registry.Entry) {}
