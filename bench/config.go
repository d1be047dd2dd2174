package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// config holds the command-line settings shared by the outer and measure
// roles (the outer role passes its arguments through unchanged).
type config struct {
	iterations int
	warmup     int
	scenarios  []string
	variants   []string // empty selects every variant
	lkcPath    string
	baseline   string // a second lkc binary, measured as variant lkc-base
	jsonOut    bool
	list       bool
	seed       uint64
	timeout    time.Duration
}

func parseConfig(args []string, usageOut io.Writer) (config, error) {
	var cfg config
	var scenarios, variants string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(usageOut)
	fs.Usage = func() {
		fmt.Fprintf(usageOut, "usage: bench/run [flags]\n\nBenchmarks lkc against runc and crun; see docs/bench.md.\n\n")
		fs.PrintDefaults()
	}
	fs.IntVar(&cfg.iterations, "n", 50, "measured iterations (each runs every variant once, in shuffled order)")
	fs.IntVar(&cfg.warmup, "warmup", 5, "warm-up iterations, discarded")
	fs.StringVar(&scenarios, "scenario", "run", "comma-separated scenarios, or \"all\" (see -list)")
	fs.StringVar(&variants, "variants", "", "comma-separated variants (default: all of the scenario's, see -list)")
	fs.StringVar(&cfg.lkcPath, "lkc", "bin/lkc", "lkc binary, relative to the repository root")
	fs.StringVar(&cfg.baseline, "baseline", "", "a second lkc binary (say, main's) run as variant lkc-base in the run, run-net (lkc-base-net, lkc-base-net4), exec, lifecycle, checkpoint, restore and proc-run scenarios, for an A/B in one shuffled run")
	fs.BoolVar(&cfg.jsonOut, "json", false, "print machine-readable JSON instead of a table")
	fs.BoolVar(&cfg.list, "list", false, "list scenarios and their variants, then exit")
	fs.Uint64Var(&cfg.seed, "seed", 0, "shuffle seed (0: pick one and report it)")
	fs.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "per-operation timeout")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.iterations < 1 || cfg.warmup < 0 {
		return config{}, errors.New("-n must be >= 1 and -warmup >= 0")
	}
	lkc, err := filepath.Abs(cfg.lkcPath)
	if err != nil {
		return config{}, fmt.Errorf("resolving -lkc %q: %w", cfg.lkcPath, err)
	}
	cfg.lkcPath = lkc
	if cfg.baseline != "" {
		if cfg.baseline, err = filepath.Abs(cfg.baseline); err != nil {
			return config{}, fmt.Errorf("resolving -baseline: %w", err)
		}
	}
	cfg.scenarios = splitList(scenarios)
	cfg.variants = splitList(variants)
	return cfg, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
