package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// lifecycleOps are the runtime commands containerd's shim and Podman's
// conmon run over a container's life, each as a process of its own.
var lifecycleOps = []string{"create", "start", "state", "kill", "delete"}

// lifecycleScenario measures a container's life as containerd and Podman
// drive it: create, start, state, kill and delete, one runtime process
// each. Every run performs the whole sequence on a fresh container; the
// variant <rt> times the five commands together, <rt>-<op> only op.
func lifecycleScenario() Scenario {
	var ratios [][2]string
	for _, op := range append([]string{""}, lifecycleOps...) {
		suffix := ""
		if op != "" {
			suffix = "-" + op
		}
		for _, other := range []string{"crun", "runc", "lkc-base"} {
			ratios = append(ratios, [2]string{"lkc" + suffix, other + suffix})
		}
	}
	return Scenario{
		Name:   "lifecycle",
		Desc:   "'<runtime> create', 'start', 'state', 'kill ID KILL', 'delete' of a busybox container (sleep), one process each",
		Ratios: ratios,
		Variants: func(env *Env) []Variant {
			runtimes := [][2]string{{"lkc", env.LKC}, {"runc", "runc"}, {"crun", "crun"}}
			if env.Baseline != "" {
				runtimes = append(runtimes, [2]string{"lkc-base", env.Baseline})
			}
			var vs []Variant
			for _, rt := range runtimes {
				vs = append(vs, lifecycleVariant(env, rt[0], rt[1], ""))
				for _, op := range lifecycleOps {
					vs = append(vs, lifecycleVariant(env, rt[0], rt[1], op))
				}
			}
			return vs
		},
	}
}

// lifecycleVariant runs the whole sequence with runtime bin and times op
// ("" for all five commands: the sum of their wall and CPU times, without
// the benchmark's own work in between).
func lifecycleVariant(env *Env, rtName, bin, op string) Variant {
	name, desc := rtName, rtName+": create, start, state, kill, delete (sum of the five)"
	if op != "" {
		name, desc = rtName+"-"+op, rtName+" "+op+" (the other four untimed)"
	}
	rt := &ociRuntime{name: rtName, bin: bin, root: filepath.Join(env.Dir, "state-lifecycle-"+name)}
	bundle := filepath.Join(env.Dir, "bundle-lifecycle-"+rtName)
	return Variant{
		Name: name,
		Desc: desc,
		Prepare: func() (string, error) {
			if err := makeSleepBundle(env.Bundle, env.Rootfs, bundle); err != nil {
				return "", err
			}
			return rt.prepare()
		},
		Run: func(ctx context.Context, iter int) (Sample, error) {
			ctx, cancel := context.WithTimeout(ctx, env.Timeout)
			defer cancel()
			id := fmt.Sprintf("%s-lc-%s-%d", env.IDPrefix, name, iter)
			defer func() {
				if rt.hasState(id) {
					rt.forceDelete(id)
				}
			}()
			return runLifecycle(ctx, env, rt, bundle, id, op)
		},
		Cleanup: func() error { return rt.deleteAll(env.IDPrefix) },
	}
}

// runLifecycle runs the five commands on a new container id and returns
// the time of op (all of them for ""). Between kill and delete it waits
// for the container's process to exit, as containerd's shim does (it
// reaps it) before it deletes: a runtime refuses to delete a running
// container without --force.
func runLifecycle(ctx context.Context, env *Env, rt *ociRuntime, bundle, id, op string) (Sample, error) {
	pidFile := filepath.Join(env.Dir, id+".pid")
	defer os.Remove(pidFile)
	steps := [][]string{
		{"create", "--bundle", bundle, "--pid-file", pidFile, id},
		{"start", id},
		{"state", id},
		{"kill", id, "KILL"},
		{"delete", id},
	}
	var total Sample
	for _, args := range steps {
		var exited func() error
		if args[0] == "kill" {
			var err error
			if exited, err = exitWaiter(pidFile); err != nil {
				return Sample{}, err
			}
		}
		s, err := env.runner.measure(rt.command(ctx, args...))
		if err != nil {
			return Sample{}, err
		}
		if op == "" || op == args[0] {
			total.Wall += s.Wall
			total.CPU += s.CPU
		}
		if exited != nil {
			if err := exited(); err != nil {
				return Sample{}, fmt.Errorf("%s kill %s: %w", rt.name, id, err)
			}
		}
	}
	return total, nil
}

// exitWaiter opens a pidfd for the process in pidFile (before it is
// signalled, so the pid cannot be reused meanwhile) and returns a function
// that waits up to 10 s for that process to exit.
func exitWaiter(pidFile string) (func() error, error) {
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return nil, fmt.Errorf("reading the pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("pid file %s: %w", pidFile, err)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	return func() error {
		defer unix.Close(fd)
		deadline := time.Now().Add(10 * time.Second)
		for {
			left := time.Until(deadline)
			if left <= 0 {
				return fmt.Errorf("pid %d still running 10 s after kill", pid)
			}
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(fds, int(left.Milliseconds())+1)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return fmt.Errorf("waiting for pid %d: %w", pid, err)
			}
			if n > 0 {
				return nil
			}
		}
	}, nil
}
