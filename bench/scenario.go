package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"text/tabwriter"
	"time"
)

// abandonAfter is how many initial runs in a row must fail for a variant
// to be dropped, so that a broken runtime does not stall the benchmark.
const abandonAfter = 3

// Env is what scenarios share within one benchmark run.
type Env struct {
	Dir      string // temporary directory, removed by the outer role
	IDPrefix string // prefix of every container id, for cleanup sweeps
	Self     string // this executable, for helper roles
	LKC      string // lkc binary
	Baseline string // a second lkc binary to compare with (-baseline), or ""
	Bundle   string // busybox bundle whose process is /bin/true
	Rootfs   string
	Timeout  time.Duration // per operation
	Warmup   int           // the first Warmup iterations are not measured
	runner   *runner
}

// Variant is one way of performing a scenario's operation, typically one
// runtime. Constructing a Variant must have no side effects; Prepare does
// the setup.
type Variant struct {
	Name string
	Desc string
	// Prepare readies the variant and returns a line of detail for the
	// report (e.g. the runtime version); an error marks it unavailable.
	Prepare func() (string, error)
	// Run performs and times one operation; iter is unique per scenario.
	Run func(ctx context.Context, iter int) (Sample, error)
	// Cleanup removes whatever the variant's runs left behind.
	Cleanup func() error
	// Notes, when set, returns a line for the report after the runs
	// (counts that are no latency, such as the rules storm's escapees).
	Notes func() string
}

// Scenario is a named operation measured for a set of variants.
type Scenario struct {
	Name   string
	Desc   string
	Ratios [][2]string // numerator and denominator variant names
	// CPU says what the cpu column measures when it is not the timed
	// command's process tree.
	CPU      string
	Variants func(env *Env) []Variant
}

// scenarios lists every benchmark; -scenario selects among them.
func scenarios() []Scenario {
	all := append([]Scenario{runLatencyScenario(), runNetScenario(), netRateScenario(), execLatencyScenario(), lifecycleScenario()}, checkpointScenarios()...)
	all = append(all, migrateScenarios()...)
	all = append(all, procScenarios()...)
	return append(all, rulesScenario(), criScenario())
}

// selectScenarios returns the named scenarios, or all of them for "all".
func selectScenarios(all []Scenario, names []string) ([]Scenario, error) {
	if slices.Equal(names, []string{"all"}) {
		return all, nil
	}
	var out []Scenario
	for _, name := range names {
		i := slices.IndexFunc(all, func(s Scenario) bool { return s.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown scenario %q (see -list)", name)
		}
		out = append(out, all[i])
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scenario selected")
	}
	return out, nil
}

// selectVariants keeps the variants named in names (all if names is empty).
func selectVariants(all []Variant, names []string) []Variant {
	if len(names) == 0 {
		return all
	}
	return slices.DeleteFunc(slices.Clone(all), func(v Variant) bool {
		return !slices.Contains(names, v.Name)
	})
}

// checkVariantNames reports a requested variant that no selected scenario
// has, so that typos fail early instead of silently measuring nothing.
func checkVariantNames(scs []Scenario, names []string, baseline string) error {
	known := map[string]bool{}
	for _, sc := range scs {
		for _, v := range sc.Variants(&Env{Baseline: baseline}) {
			known[v.Name] = true
		}
	}
	for _, name := range names {
		if !known[name] {
			return fmt.Errorf("unknown variant %q (see -list)", name)
		}
	}
	return nil
}

func listScenarios(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, sc := range scenarios() {
		fmt.Fprintf(tw, "%s\t%s\n", sc.Name, sc.Desc)
		for _, v := range sc.Variants(&Env{}) {
			fmt.Fprintf(tw, "  %s\t%s\n", v.Name, v.Desc)
		}
	}
	return tw.Flush()
}

// schedule returns, for each iteration, the order in which to run n
// variants: a fresh random permutation every time, because a fixed order
// (or strict alternation) biases wall-clock comparisons.
func schedule(rng *rand.Rand, iterations, n int) [][]int {
	orders := make([][]int, iterations)
	for i := range orders {
		orders[i] = rng.Perm(n)
	}
	return orders
}

// measureScenario prepares the selected variants, runs warmup+iterations
// rounds in shuffled order, cleans up and summarizes.
func measureScenario(ctx context.Context, sc Scenario, env *Env, cfg config, rng *rand.Rand) *scenarioResult {
	res := &scenarioResult{Name: sc.Name, Desc: sc.Desc, CPU: sc.CPU, Warmup: cfg.warmup}
	active, results := prepareVariants(res, selectVariants(sc.Variants(env), cfg.variants))
	defer cleanupVariants(active, results)
	for iter, order := range schedule(rng, cfg.warmup+cfg.iterations, len(active)) {
		if !runRound(ctx, active, results, order, iter, iter >= cfg.warmup) {
			res.Interrupted = true
			break
		}
		res.Iterations = max(iter+1-cfg.warmup, 0)
	}
	res.summarize(sc.Ratios)
	return res
}

// prepareVariants adds a result for each variant to res and returns the
// variants that are ready to run, with their results.
func prepareVariants(res *scenarioResult, vs []Variant) ([]Variant, []*variantResult) {
	var active []Variant
	var results []*variantResult
	for _, v := range vs {
		vr := &variantResult{Name: v.Name, Desc: v.Desc}
		res.Variants = append(res.Variants, vr)
		info, err := v.Prepare()
		vr.Info = info
		if err != nil {
			vr.Unavailable = err.Error()
			continue
		}
		active = append(active, v)
		results = append(results, vr)
	}
	return active, results
}

// runRound runs every still-usable variant once, in the given order. It
// returns false, discarding the interrupted run, once ctx is cancelled.
func runRound(ctx context.Context, vs []Variant, results []*variantResult, order []int, iter int, measured bool) bool {
	for _, i := range order {
		if results[i].Unavailable != "" {
			continue
		}
		s, err := vs[i].Run(ctx, iter)
		if ctx.Err() != nil {
			return false
		}
		results[i].record(s, err, measured)
	}
	return true
}

func cleanupVariants(vs []Variant, results []*variantResult) {
	for i, v := range vs {
		if v.Notes != nil {
			results[i].Notes = v.Notes()
		}
		if err := v.Cleanup(); err != nil {
			results[i].CleanupError = err.Error()
		}
	}
}
