package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// execSleepArgs is the process of the long-lived container that the exec
// scenario enters: busybox sleep, as pid 1 of its pid namespace.
var execSleepArgs = []string{"/bin/sleep", "100000"}

// execLatencyScenario measures "<runtime> exec ID /bin/true" into a
// container that the same runtime started once, in Prepare.
func execLatencyScenario() Scenario {
	return Scenario{
		Name:   "exec",
		Desc:   "'<runtime> exec ID /bin/true' into a running busybox container (sleep)",
		Ratios: [][2]string{{"lkc", "crun"}, {"lkc", "runc"}, {"crun", "runc"}, {"lkc", "lkc-base"}},
		Variants: func(env *Env) []Variant {
			vs := []Variant{
				runtimeExecVariant(env, "lkc", env.LKC),
				runtimeExecVariant(env, "runc", "runc"),
				runtimeExecVariant(env, "crun", "crun"),
			}
			if env.Baseline != "" {
				vs = append(vs, runtimeExecVariant(env, "lkc-base", env.Baseline))
			}
			return vs
		},
	}
}

func runtimeExecVariant(env *Env, name, bin string) Variant {
	rt := &ociRuntime{name: name, bin: bin, root: filepath.Join(env.Dir, "state-exec-"+name)}
	id := fmt.Sprintf("%s-exec-%s", env.IDPrefix, name)
	return Variant{
		Name: name,
		Desc: name + " --root STATE exec ID /bin/true (ID: started once by " + name + " run -d)",
		Prepare: func() (string, error) {
			info, err := rt.prepare()
			if err != nil {
				return info, err
			}
			if err := startLongLived(env, rt, id); err != nil {
				rt.forceDelete(id) // a half-started container must not outlive us
				return info, err
			}
			return info, nil
		},
		Run: func(ctx context.Context, _ int) (Sample, error) {
			ctx, cancel := context.WithTimeout(ctx, env.Timeout)
			defer cancel()
			return env.runner.measure(rt.command(ctx, "exec", id, "/bin/true"))
		},
		Cleanup: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if out, err := rt.command(ctx, "delete", "-f", id).CombinedOutput(); err != nil {
				return fmt.Errorf("%s delete -f %s: %w: %s", name, id, err, strings.TrimSpace(string(out)))
			}
			return nil
		},
	}
}

// startLongLived writes a bundle for id (the shared rootfs, process sleep)
// and starts it detached with "<rt> run -d", then checks it is running.
// The runtime's (and so the container's) stdio are /dev/null and a log
// file, never a pipe: the sleeping container keeps them open, and waiting
// for a pipe's EOF would hang.
func startLongLived(env *Env, rt *ociRuntime, id string) error {
	bundle := filepath.Join(env.Dir, "bundle-exec-"+rt.name)
	if err := makeSleepBundle(env.Bundle, env.Rootfs, bundle); err != nil {
		return err
	}
	logPath := filepath.Join(env.Dir, "run-d-"+rt.name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("creating %s: %w", logPath, err)
	}
	defer log.Close()
	ctx, cancel := context.WithTimeout(context.Background(), env.Timeout)
	defer cancel()
	cmd := rt.command(ctx, "run", "-d", "--bundle", bundle, id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = env.runner.null, env.runner.null, log
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(logPath)
		return fmt.Errorf("%s run -d %s: %w: %s", rt.name, id, err, strings.TrimSpace(string(out)))
	}
	status, err := rt.status(id)
	if err != nil {
		return err
	}
	if status != "running" {
		return fmt.Errorf("%s: container %s is %q after run -d, want running", rt.name, id, status)
	}
	return nil
}

// status returns the "status" field of "<rt> state id".
func (r *ociRuntime) status(id string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := r.command(ctx, "state", id).Output()
	if err != nil {
		return "", fmt.Errorf("%s state %s: %w", r.name, id, err)
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return "", fmt.Errorf("%s state %s: %w", r.name, id, err)
	}
	return st.Status, nil
}
