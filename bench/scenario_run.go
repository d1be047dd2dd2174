package main

import (
	"context"
	"fmt"
	"path/filepath"
)

// runLatencyScenario measures "<runtime> run" of a container whose process
// is /bin/true: create, start, wait and delete in one command.
func runLatencyScenario() Scenario {
	return Scenario{
		Name:   "run",
		Desc:   "'<runtime> run' of a busybox bundle whose process is /bin/true",
		Ratios: [][2]string{{"lkc", "crun"}, {"lkc", "runc"}, {"crun", "runc"}, {"lkc", "lkc-base"}},
		Variants: func(env *Env) []Variant {
			vs := []Variant{
				runtimeRunVariant(env, "lkc", env.LKC),
				runtimeRunVariant(env, "runc", "runc"),
				runtimeRunVariant(env, "crun", "crun"),
				floorVariant(env),
			}
			if env.Baseline != "" {
				vs = append(vs, runtimeRunVariant(env, "lkc-base", env.Baseline))
			}
			return vs
		},
	}
}

func runtimeRunVariant(env *Env, name, bin string) Variant {
	return bundleRunVariant(env, name, bin, env.Bundle)
}

// bundleRunVariant is "<runtime> run" of the given bundle.
func bundleRunVariant(env *Env, name, bin, bundle string) Variant {
	return envRunVariant(env, &ociRuntime{name: name, bin: bin, root: filepath.Join(env.Dir, "state-"+name)}, bundle)
}

// envRunVariant is "run" of the given bundle by rt.
func envRunVariant(env *Env, rt *ociRuntime, bundle string) Variant {
	name := rt.name
	return Variant{
		Name:    name,
		Desc:    name + " --root STATE run --bundle BUNDLE ID",
		Prepare: rt.prepare,
		Run: func(ctx context.Context, iter int) (Sample, error) {
			ctx, cancel := context.WithTimeout(ctx, env.Timeout)
			defer cancel()
			id := fmt.Sprintf("%s-%s-%d", env.IDPrefix, name, iter)
			s, err := env.runner.measure(rt.command(ctx, "run", "--bundle", bundle, id))
			if err != nil || rt.hasState(id) {
				rt.forceDelete(id)
			}
			return s, err
		},
		Cleanup: func() error { return rt.deleteAll(env.IDPrefix) },
	}
}
