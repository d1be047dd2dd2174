package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// procLoadContainers is how many containers poll in proc-load (the
	// issue's 100; LKC_BENCH_PROC_LOAD overrides it on a smaller machine).
	procLoadContainers = 100
	serverWindow       = time.Second // one CPU sample of a server
	killSpan           = time.Second // reads timed after a kill -9
)

// procScenarios measure a container's virtual /proc: the read latency of
// each file (native, lxcfs, lkc) idle and under load, the servers' CPU
// under load, the stall across kill -9 of lkc's worker, and what the
// annotation adds to lkc run.
func procScenarios() []Scenario {
	return []Scenario{
		{
			Name:     "proc",
			Desc:     "open+read+close of each virtual /proc file inside a container (64 MiB, 0.5 CPU): native vs lxcfs vs lkc; wall = the read, timed inside",
			Ratios:   procRatios(false),
			Variants: func(env *Env) []Variant { return procReadVariants(newProcLab(env, "proc", 0), false) },
		},
		{
			Name:   "proc-load",
			Desc:   "as proc, while load containers each read meminfo and stat from lkc and from lxcfs every 100 ms; server/*: 1 s windows, cpu = the server's CPU in it",
			Ratios: procRatios(true),
			Variants: func(env *Env) []Variant {
				return procReadVariants(newProcLab(env, "proc-load", procLoad()), true)
			},
		},
		{
			Name:     "proc-kill",
			Desc:     "reads of /proc/meminfo back to back for 1 s inside an lkc container, lkc's worker (alive 10 s, so no crash-loop backoff) killed with SIGKILL 10 ms in: wall = the slowest read, cpu = the p99 read",
			Variants: func(env *Env) []Variant { return []Variant{procKillVariant(newProcLab(env, "proc-kill", 0))} },
		},
		{
			Name:   "proc-run",
			Desc:   "'lkc run' of the /bin/true bundle without and with org.lkc.proc=virtual (the daemon already running); -baseline adds lkc-base and lkc-base-proc, the latter with a daemon of its own",
			Ratios: [][2]string{{"lkc-proc", "lkc"}, {"lkc-base-proc", "lkc-base"}, {"lkc-proc", "lkc-base-proc"}},
			Variants: func(env *Env) []Variant {
				vs := []Variant{runtimeRunVariant(env, "lkc", env.LKC), procRunVariant(env, "lkc-proc", env.LKC, nil)}
				if env.Baseline != "" {
					vs = append(vs, runtimeRunVariant(env, "lkc-base", env.Baseline),
						procRunVariant(env, "lkc-base-proc", env.Baseline, baseDaemon(env)))
				}
				return vs
			},
		},
	}
}

func procLoad() int {
	if n, err := strconv.Atoi(os.Getenv("LKC_BENCH_PROC_LOAD")); err == nil && n >= 0 {
		return n
	}
	return procLoadContainers
}

func procRatios(servers bool) [][2]string {
	var rs [][2]string
	for _, f := range procFiles {
		rs = append(rs, [2]string{f.name + "/lkc", f.name + "/lxcfs"}, [2]string{f.name + "/lkc", f.name + "/native"})
	}
	if servers {
		rs = append(rs, [2]string{"server/lkc", "server/lxcfs"})
	}
	return rs
}

// procReadVariants returns one variant per file and way of serving it,
// and with servers one per server sampling its CPU.
func procReadVariants(lab *procLab, servers bool) []Variant {
	var vs []Variant
	for _, f := range procFiles {
		for _, tool := range []string{procNative, procLxcfs, procLKC} {
			vs = append(vs, procReadVariant(lab, f.name, f.path, tool))
		}
	}
	if servers {
		vs = append(vs, procServerVariant(lab, procLxcfs), procServerVariant(lab, procLKC))
	}
	return vs
}

func procReadVariant(lab *procLab, name, path, tool string) Variant {
	return Variant{
		Name:    name + "/" + tool,
		Desc:    path + " in the " + tool + " container",
		Prepare: lab.acquire,
		Run: func(context.Context, int) (Sample, error) {
			r, err := lab.probes[tool].ask("r " + path)
			if err != nil {
				return Sample{}, err
			}
			return Sample{Wall: time.Duration(r[0])}, nil
		},
		Cleanup: lab.release,
	}
}

// procServerVariant samples a server's CPU time over one window.
func procServerVariant(lab *procLab, tool string) Variant {
	return Variant{
		Name:    "server/" + tool,
		Desc:    tool + "'s server processes (lkc: worker + holder): CPU time used in a 1 s window",
		Prepare: lab.acquire,
		Run: func(ctx context.Context, _ int) (Sample, error) {
			pids, err := lab.serverPids(tool)
			if err != nil {
				return Sample{}, err
			}
			cpu0, _, err := serverUsage(pids)
			if err != nil {
				return Sample{}, err
			}
			start := time.Now()
			select {
			case <-ctx.Done():
				return Sample{}, ctx.Err()
			case <-time.After(serverWindow):
			}
			cpu1, rss, err := serverUsage(pids)
			if err != nil {
				return Sample{}, err
			}
			lab.rss[tool] = max(lab.rss[tool], rss)
			return Sample{Wall: time.Since(start), CPU: cpu1 - cpu0}, nil
		},
		Cleanup: lab.release,
	}
}

func procKillVariant(lab *procLab) Variant {
	return Variant{
		Name:    "kill/lkc",
		Desc:    "lkc container: /proc/meminfo read in a loop across kill -9 of the worker",
		Prepare: lab.acquire,
		Run: func(ctx context.Context, _ int) (Sample, error) {
			pids, err := lab.serverPids(procLKC)
			if err != nil {
				return Sample{}, err
			}
			if err := waitQuiet(ctx, pids[0]); err != nil {
				return Sample{}, err
			}
			c := lab.probes[procLKC]
			if _, err := fmt.Fprintf(c.w, "l /proc/meminfo %d\n", killSpan.Milliseconds()); err != nil {
				return Sample{}, err
			}
			time.Sleep(10 * time.Millisecond)
			if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
				return Sample{}, fmt.Errorf("killing worker %d: %w", pids[0], err)
			}
			r, err := c.answer()
			if err != nil {
				return Sample{}, err
			}
			if r[3] != 0 {
				return Sample{}, fmt.Errorf("%d of %d reads failed across the kill", r[3], r[2])
			}
			waitWorker(lab, pids[0])
			return Sample{Wall: time.Duration(r[0]), CPU: time.Duration(r[1])}, nil
		},
		Cleanup: lab.release,
	}
}

// quickDeath is how long a worker must have lived for the holder to
// restart it at once when it dies (internal/fdstore: deaths sooner than
// that in a row back off, up to 5 s); each kill waits for it, so that the
// stall measured is a single crash's, not a crash loop's.
const quickDeath = 10*time.Second + 500*time.Millisecond

// waitQuiet waits until process pid has lived quickDeath.
func waitQuiet(ctx context.Context, pid int) error {
	age, err := processAge(pid)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(quickDeath - age):
		return nil
	}
}

// processAge is how long ago pid started (its starttime in /proc/PID/stat
// against /proc/uptime).
func processAge(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest) // f[0] is field 3
	if len(f) < 20 {
		return 0, fmt.Errorf("process %d: short stat", pid)
	}
	ticks, err := strconv.ParseFloat(f[19], 64)
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	var uptime float64
	if _, err := fmt.Sscan(string(up), &uptime); err != nil {
		return 0, fmt.Errorf("/proc/uptime: %w", err)
	}
	return time.Duration((uptime - ticks/100) * float64(time.Second)), nil
}

// waitWorker waits (up to 5 s) for the holder to have started a worker
// other than old, so that the next kill finds one.
func waitWorker(lab *procLab, old int) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if pids, err := lab.serverPids(procLKC); err == nil && pids[0] != old && pids[0] != 0 {
			return
		}
	}
}

// procRunVariant is lkc run of the benchmark bundle with the annotation by
// binary bin, with the environment daemon adds (nil: the benchmark's
// daemon); the variant stops a daemon of its own at its cleanup.
func procRunVariant(env *Env, name, bin string, daemon []string) Variant {
	bundle := filepath.Join(env.Dir, "bundle-proc-run")
	rt := &ociRuntime{name: name, bin: bin, root: filepath.Join(env.Dir, "state-"+name), env: daemon}
	v := envRunVariant(env, rt, bundle)
	v.Desc = "lkc --root STATE run --bundle BUNDLE ID, BUNDLE's config with org.lkc.proc=virtual"
	if daemon != nil {
		cleanup := v.Cleanup
		v.Cleanup = func() error {
			err := cleanup()
			if out, serr := rt.command(context.Background(), "daemon", "stop").CombinedOutput(); serr != nil && err == nil {
				err = fmt.Errorf("%s daemon stop: %w: %s", name, serr, out)
			}
			return err
		}
	}
	prepare := v.Prepare
	v.Prepare = func() (string, error) {
		if err := os.MkdirAll(bundle, 0o755); err != nil {
			return "", fmt.Errorf("creating bundle %s: %w", bundle, err)
		}
		err := editConfig(filepath.Join(env.Bundle, "config.json"), filepath.Join(bundle, "config.json"),
			func(spec map[string]any) error {
				spec["root"].(map[string]any)["path"] = env.Rootfs
				spec["annotations"] = map[string]any{"org.lkc.proc": "virtual"}
				return nil
			})
		if err != nil {
			return "", err
		}
		return prepare()
	}
	return v
}

// baseDaemon is the environment that gives -baseline's lkc a daemon of its
// own, so that each binary's runs are served by its own worker.
func baseDaemon(env *Env) []string {
	return []string{"LKC_DAEMON_DIR=" + filepath.Join(env.Dir, "lkcd-base")}
}
