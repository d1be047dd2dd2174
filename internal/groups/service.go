package groups

import (
	"context"
	"errors"

	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/registry"
	"github.com/lkc-containers/lkc/internal/service"
)

// Service is the daemon's groups service: at every worker start it makes
// the cgroup of each defined group that lacks one (after a reboot, or
// removed by hand) and applies the group's limits; a reload (SIGHUP,
// `lkc daemon reload`) does the same and also applies the limits of the
// groups whose cgroups exist, so a definition created or edited on disk
// by hand takes effect. It keeps no state of its own but the log, so a
// killed worker loses nothing: the next start does it again.
type Service struct {
	logf func(string, ...any)
}

// Name implements service.Service.
func (*Service) Name() string { return "groups" }

// Start recreates the missing cgroups, parents before children. One group
// that fails is logged and the others still come back: a bad definition
// must not keep the daemon (and every other service) down.
func (s *Service) Start(ctx context.Context, d *service.Deps) error {
	s.logf = d.Logf
	s.sync(d.Conf, false)
	return nil
}

// Reload makes the missing cgroups and applies every definition's limits
// to the cgroups that exist. A definition that fails is logged, not
// returned: the reload of the other services (the rules) must go on.
func (s *Service) Reload(conf *hostconf.Conf) error {
	s.sync(conf, true)
	return nil
}

// sync makes each group's cgroup where it is missing and, with apply,
// writes the limits of the groups whose cgroups were there already. It
// holds the groups' lock, as the CLI's changes do: a delete under way
// removes the cgroup before the definition, and a cgroup made again in
// between would outlive the group.
func (s *Service) sync(conf *hostconf.Conf, apply bool) {
	st := FromConf(conf)
	all, err := st.List(func(err error) { s.logf("groups: %v", err) })
	if err != nil || len(all) == 0 {
		if err != nil {
			s.logf("groups: %v", err)
		}
		return
	}
	unlock, err := st.lock()
	if err != nil {
		s.logf("groups: %v", err)
		return
	}
	defer unlock()
	for _, g := range all {
		if g, err = st.Get(g.Name); errors.Is(err, ErrNotExist) {
			continue // deleted while the lock was waited for
		}
		if err != nil {
			s.logf("groups: %v", err)
			continue
		}
		made, err := st.Ensure(g)
		if err == nil && !made && apply {
			err = st.Apply(g)
		}
		switch {
		case err != nil:
			s.logf("groups: %v", err)
		case made:
			s.logf("groups: made the cgroup of group %s again", g.Name)
		}
	}
}

// Adopt implements service.Service: groups hold host processes, not
// containers, so there is nothing to take on.
func (*Service) Adopt(*registry.Entry, *daemonapi.AdoptReply) error { return nil }

// Release implements service.Service.
func (*Service) Release(*registry.Entry) {}
