package spec

import (
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/config"
)

// convertHooks copies config.json's hooks, refusing a relative path or a
// timeout that is not positive.
func convertHooks(s *specs.Spec, c *config.Config) error {
	if s.Hooks == nil {
		return nil
	}
	points := []struct {
		name string
		in   []specs.Hook
		out  *[]config.Hook
	}{
		{"prestart", s.Hooks.Prestart, &c.Hooks.Prestart}, // deprecated, still honoured
		{"createRuntime", s.Hooks.CreateRuntime, &c.Hooks.CreateRuntime},
		{"createContainer", s.Hooks.CreateContainer, &c.Hooks.CreateContainer},
		{"startContainer", s.Hooks.StartContainer, &c.Hooks.StartContainer},
		{"poststart", s.Hooks.Poststart, &c.Hooks.Poststart},
		{"poststop", s.Hooks.Poststop, &c.Hooks.Poststop},
	}
	for _, p := range points {
		for i, h := range p.in {
			if !filepath.IsAbs(h.Path) {
				return invalid("hooks.%s[%d]: path %q is not absolute", p.name, i, h.Path)
			}
			hook := config.Hook{Path: h.Path, Args: h.Args, Env: h.Env}
			if h.Timeout != nil {
				if *h.Timeout <= 0 {
					return invalid("hooks.%s[%d] %s: timeout %d is not positive", p.name, i, h.Path, *h.Timeout)
				}
				hook.Timeout = *h.Timeout
			}
			*p.out = append(*p.out, hook)
		}
	}
	return nil
}
