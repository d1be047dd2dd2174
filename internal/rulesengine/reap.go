package rulesengine

import (
	"context"
	"time"

	"github.com/lkc-containers/lkc/internal/groups"
	"github.com/lkc-containers/lkc/internal/hostconf"
)

// reaper removes the groups the engine made from a template (group=%u)
// once they have stayed empty for rules.template-idle: a host would
// otherwise keep a group per user that ever matched, for good. Groups
// made with `lkc group create` and groups with processes or child groups
// are never removed. It looks every half of that period: cgroup v1 tells
// of an emptied cgroup only through the host's one release_agent, which
// is not lkc's to take. When each group was first seen empty is kept in
// memory: a new worker starts the clock again, which only keeps a group
// longer.
type reaper struct {
	s          *Service
	emptySince map[string]time.Time
}

// reap runs until ctx ends, while rules.template-idle is not 0 (a reload
// that changes it takes effect at the next look).
func (s *Service) reap(ctx context.Context) {
	r := &reaper{s: s, emptySince: map[string]time.Time{}}
	for {
		idle := s.config().RulesTemplateIdle
		wait := idle / 2
		if idle == 0 {
			wait = time.Minute
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if idle > 0 {
			r.look(s.config(), idle)
		}
	}
}

// look removes each template-made group empty for idle or longer, and
// notes those found empty for the first time.
func (r *reaper) look(conf *hostconf.Conf, idle time.Duration) {
	store := groups.FromConf(conf)
	all, err := store.List(func(err error) { r.s.logf("rules: %v", err) })
	if err != nil {
		r.s.logf("rules: %v", err)
		return
	}
	now := time.Now()
	seen := map[string]bool{}
	for _, g := range all {
		if !store.Idle(g) {
			continue
		}
		seen[g.Name] = true
		since, ok := r.emptySince[g.Name]
		if !ok {
			r.emptySince[g.Name] = now
			continue
		}
		if now.Sub(since) >= idle {
			r.remove(store, g, now.Sub(since))
		}
	}
	for name := range r.emptySince {
		if !seen[name] {
			delete(r.emptySince, name)
		}
	}
}

// remove removes group g, empty for that long, between two of the engine's events, so that no
// move of the engine's races it, and makes the engine forget it.
func (r *reaper) remove(store *groups.Store, g *groups.Group, empty time.Duration) {
	r.s.proc.Lock()
	defer r.s.proc.Unlock()
	removed, err := store.RemoveIdle(g.Name)
	switch {
	case err != nil:
		r.s.logf("rules: removing the empty group %s: %v", g.Name, err)
	case removed:
		delete(r.emptySince, g.Name)
		r.s.eng.forgetGroup(g.Name)
		r.s.logf("rules: removed group %s (made from group=%s), empty for %v", g.Name, g.Template, empty.Round(time.Second))
	}
}

// config is the configuration in force (the last reload's).
func (s *Service) config() *hostconf.Conf {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conf
}
