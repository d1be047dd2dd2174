package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// criuPath is the CRIU both runtimes are given, so that the comparison is
// of the runtimes' own work (runc 1.1 would otherwise find Debian's 3.17).
const criuPath = "/opt/lkc/criu/criu"

// ckptSizes are the amounts of touched anonymous memory (MiB) the
// checkpointed container holds.
var ckptSizes = []int{0, 64, 512}

// checkpointScenarios measure "<rt> checkpoint" and "<rt> restore -d" of a
// busybox container holding 0, 64 and 512 MiB, for lkc and runc (and the
// -baseline lkc as lkc-base).
func checkpointScenarios() []Scenario {
	return []Scenario{ckptScenario("checkpoint"), ckptScenario("restore")}
}

func ckptScenario(op string) Scenario {
	var ratios [][2]string
	for _, mib := range ckptSizes {
		ratios = append(ratios, [2]string{fmt.Sprintf("lkc-%dM", mib), fmt.Sprintf("runc-%dM", mib)},
			[2]string{fmt.Sprintf("lkc-%dM", mib), fmt.Sprintf("lkc-base-%dM", mib)})
	}
	desc := "'<runtime> --criu " + criuPath + " checkpoint' of a busybox container holding N MiB"
	if op == "restore" {
		desc = "'<runtime> --criu " + criuPath + " restore -d' of a busybox container holding N MiB"
	}
	return Scenario{
		Name: op, Desc: desc, Ratios: ratios,
		Variants: func(env *Env) []Variant {
			var vs []Variant
			for _, mib := range ckptSizes {
				vs = append(vs, ckptVariant(env, op, "lkc", env.LKC, mib), ckptVariant(env, op, "runc", "runc", mib))
				if env.Baseline != "" {
					vs = append(vs, ckptVariant(env, op, "lkc-base", env.Baseline, mib))
				}
			}
			return vs
		},
	}
}

// ckptVariant starts a fresh container for every run (untimed), then times
// the checkpoint, or checkpoints untimed and times the restore.
func ckptVariant(env *Env, op, rtName, bin string, mib int) Variant {
	name := fmt.Sprintf("%s-%dM", rtName, mib)
	rt := &ociRuntime{name: rtName, bin: bin, root: filepath.Join(env.Dir, "state-"+op+"-"+name)}
	bundle := filepath.Join(env.Dir, "bundle-ckpt-"+strconv.Itoa(mib))
	return Variant{
		Name: name,
		Desc: fmt.Sprintf("%s %s, container holding %d MiB (started by %s run -d, untimed)", rtName, op, mib, rtName),
		Prepare: func() (string, error) {
			if _, err := os.Stat(criuPath); err != nil {
				return "", fmt.Errorf("CRIU 4: %w (scripts/install-criu.sh)", err)
			}
			if err := makeHolderBundle(env, bundle, mib); err != nil {
				return "", err
			}
			return rt.prepare()
		},
		Run: func(ctx context.Context, iter int) (Sample, error) {
			id := fmt.Sprintf("%s-%s-%s-%d", env.IDPrefix, op, name, iter)
			images := filepath.Join(env.Dir, "images-"+id)
			defer os.RemoveAll(images)
			defer rt.forceDelete(id)
			if err := startHolder(ctx, env, rt, bundle, id, mib); err != nil {
				return Sample{}, err
			}
			ckpt := func() *exec.Cmd {
				return rt.command(ctx, "--criu", criuPath, "checkpoint", "--image-path", images, id)
			}
			if op == "checkpoint" {
				return env.runner.measure(ckpt())
			}
			if out, err := ckpt().CombinedOutput(); err != nil {
				return Sample{}, fmt.Errorf("%s checkpoint %s: %w: %s", rtName, id, err, strings.TrimSpace(string(out)))
			}
			return env.runner.measure(rt.command(ctx, "--criu", criuPath, "restore", "-d", "--bundle", bundle, "--image-path", images, id))
		},
		Cleanup: func() error { return rt.deleteAll(env.IDPrefix) },
	}
}

// holderArgs holds mib MiB of random data in dd's own memory: dd reads one
// block and then blocks writing it to a sleep that never reads.
func holderArgs(mib int) []string {
	if mib == 0 {
		return execSleepArgs
	}
	n := strconv.Itoa(mib << 20)
	return []string{"/bin/sh", "-c", "head -c " + n + " /dev/urandom | dd bs=" + n + " count=1 iflag=fullblock 2>/dev/null | sleep 100000"}
}

func makeHolderBundle(env *Env, dir string, mib int) error {
	if err := makeSleepBundle(env.Bundle, env.Rootfs, dir); err != nil {
		return err
	}
	cfg := filepath.Join(dir, "config.json")
	return editConfig(cfg, cfg, func(spec map[string]any) error {
		spec["process"].(map[string]any)["args"] = holderArgs(mib)
		return nil
	})
}

// startHolder runs the container detached with pipes for stdio (CRIU's
// usual case: runc can only map pipes back on restore) and waits until it
// holds its memory.
func startHolder(ctx context.Context, env *Env, rt *ociRuntime, bundle, id string, mib int) error {
	var parent, child [3]*os.File
	for i := range child {
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		if i == 0 {
			parent[i], child[i] = w, r
		} else {
			parent[i], child[i] = r, w
		}
		defer parent[i].Close()
	}
	cmd := rt.command(ctx, "run", "-d", "--bundle", bundle, id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = child[0], child[1], child[2]
	err := cmd.Run()
	for _, f := range child {
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("%s run -d %s: %w", rt.name, id, err)
	}
	return waitHolding(id, int64(mib)<<20, env.Timeout)
}

// waitHolding waits until a dd in a cgroup named after id has read size
// bytes.
func waitHolding(id string, size int64, timeout time.Duration) error {
	if size == 0 {
		return nil
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		procs, _ := filepath.Glob("/proc/[0-9]*")
		for _, p := range procs {
			cg, _ := os.ReadFile(p + "/cgroup")
			comm, _ := os.ReadFile(p + "/comm")
			if !strings.Contains(string(cg), "/"+id+"\n") || strings.TrimSpace(string(comm)) != "dd" {
				continue
			}
			io, _ := os.ReadFile(p + "/io")
			for _, line := range strings.Split(string(io), "\n") {
				if v, ok := strings.CutPrefix(line, "rchar: "); ok {
					if n, _ := strconv.ParseInt(v, 10, 64); n >= size {
						return nil
					}
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("container %s did not fill %d bytes within %v", id, size, timeout)
}
