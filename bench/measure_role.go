package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
)

// measureMain runs in the private mount namespace: it sets up the shared
// bundle, runs the selected scenarios and prints the report.
func measureMain(args []string, dir string) error {
	cfg, err := parseConfig(args, io.Discard) // already validated by the outer role
	if err != nil {
		return err
	}
	scs, err := selectScenarios(scenarios(), cfg.scenarios)
	if err != nil {
		return err
	}
	nsNote, err := detachUnifiedCgroup()
	if err != nil {
		return err
	}
	env, err := newEnv(dir, cfg)
	if err != nil {
		return err
	}
	defer env.runner.close()
	defer func() {
		for _, n := range sweepDetachedUnified(unifiedMount, env.IDPrefix) {
			fmt.Fprintf(os.Stderr, "bench: cleanup: %s\n", n)
		}
	}()
	if err := privateDaemon(dir); err != nil {
		return err
	}
	defer stopDaemon(env)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	seed := cfg.seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	rep := &report{Host: currentHost(), Seed: seed, Namespace: nsNote}
	for _, sc := range scs {
		fmt.Fprintf(os.Stderr, "bench: scenario %s: %d warm-up + %d measured iterations\n",
			sc.Name, cfg.warmup, cfg.iterations)
		rep.Scenarios = append(rep.Scenarios, measureScenario(ctx, sc, env, cfg, rng))
	}
	if err := rep.write(os.Stdout, cfg.jsonOut); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted; partial results above")
	}
	return nil
}

func newEnv(dir string, cfg config) (*Env, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locating own executable: %w", err)
	}
	bundle := filepath.Join(dir, "bundle")
	if err := makeBundle(bundle); err != nil {
		return nil, fmt.Errorf("making bundle: %w", err)
	}
	r, err := newRunner(dir)
	if err != nil {
		return nil, err
	}
	return &Env{
		Dir:      dir,
		IDPrefix: filepath.Base(dir),
		Self:     self,
		LKC:      cfg.lkcPath,
		Baseline: cfg.baseline,
		Bundle:   bundle,
		Rootfs:   filepath.Join(bundle, "rootfs"),
		Timeout:  cfg.timeout,
		Warmup:   cfg.warmup,
		runner:   r,
	}, nil
}

// privateDaemon points every lkc the benchmark runs at a daemon of its own
// (state under dir, default configuration), which the first container
// with a virtual /proc starts, so that the host's daemon is not measured
// nor disturbed.
func privateDaemon(dir string) error {
	conf := filepath.Join(dir, "lkc.conf")
	if err := os.WriteFile(conf, nil, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", conf, err)
	}
	os.Setenv("LKC_DAEMON_DIR", filepath.Join(dir, "lkcd"))
	os.Setenv("LKC_CONFIG", conf)
	return nil
}

// stopDaemon stops the private daemon if a scenario started it.
func stopDaemon(env *Env) {
	if _, err := os.Stat(os.Getenv("LKC_DAEMON_DIR")); err != nil {
		return
	}
	if out, err := exec.Command(env.LKC, "daemon", "stop").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: lkc daemon stop: %v: %s\n", err, out)
	}
}
