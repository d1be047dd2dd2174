package groups

import (
	"context"

	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/registry"
	"github.com/lkc-containers/lkc/internal/service"
)

// Service is the daemon's groups service: at every worker start it makes
// the cgroup of each defined group that lacks one (after a reboot, or
// removed by hand) and applies the group's limits. It keeps no state of
// its own, so a killed worker loses nothing: the next start does it again.
type Service struct{}

// Name implements service.Service.
func (*Service) Name() string { return "groups" }

// Start recreates the missing cgroups, parents before children. One group
// that fails is logged and the others still come back: a bad definition
// must not keep the daemon (and every other service) down.
func (*Service) Start(ctx context.Context, d *service.Deps) error {
	s := FromConf(d.Conf)
	all, err := s.List()
	if err != nil {
		d.Logf("groups: %v", err)
		return nil
	}
	for _, g := range all {
		made, err := s.Ensure(g)
		switch {
		case err != nil:
			d.Logf("groups: %v", err)
		case made:
			d.Logf("groups: made the cgroup of group %s again", g.Name)
		}
	}
	return nil
}

// Adopt implements service.Service: groups hold host processes, not
// containers, so there is nothing to take on.
func (*Service) Adopt(*registry.Entry, *daemonapi.AdoptReply) error { return nil }

// Release implements service.Service.
func (*Service) Release(*registry.Entry) {}
