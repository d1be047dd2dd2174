package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// migSizes are the amounts of touched memory (MiB) of the migrated
// container.
var migSizes = []int{64, 512, 1024}

const (
	migToken  = "lkc-bench-migration-token-0123456789"
	migListen = "127.0.0.1:7979"
	podmanImg = "localhost/lkc-bench-busybox:latest"
)

// migrateScenarios measure moving a container holding N MiB between two
// lkc roots on this machine (loopback, shared storage): the downtime (the
// summary's downtime_ms) and the total time, for `lkc migrate` and for
// the Podman way with runc (checkpoint --export, copy, restore --import),
// whose container is stopped for the whole operation.
func migrateScenarios() []Scenario {
	return []Scenario{migScenario("migrate-downtime"), migScenario("migrate-total")}
}

func migScenario(name string) Scenario {
	var ratios [][2]string
	for _, mib := range migSizes {
		ratios = append(ratios, [2]string{fmt.Sprintf("lkc-%dM", mib), fmt.Sprintf("podman-%dM", mib)})
	}
	return Scenario{
		Name:   name,
		Desc:   "moving a busybox container holding N MiB: lkc migrate (post-copy where it works, else stop-and-copy) vs podman checkpoint --export + restore --import (runc)",
		Ratios: ratios,
		Variants: func(env *Env) []Variant {
			srv := &migServer{env: env}
			var vs []Variant
			for _, mib := range migSizes {
				vs = append(vs, lkcMigVariant(env, srv, name, mib), podmanMigVariant(env, name, mib))
			}
			return vs
		},
	}
}

// migServer is the one `lkc serve` the lkc variants share.
type migServer struct {
	env         *Env
	cmd         *exec.Cmd
	token, root string
	mode        string
}

func (s *migServer) start() error {
	if s.cmd != nil {
		return nil
	}
	dir := filepath.Join(s.env.Dir, "migrate")
	s.token, s.root = filepath.Join(dir, "token"), filepath.Join(dir, "target")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(s.token, []byte(migToken), 0o600); err != nil {
		return err
	}
	s.cmd = exec.Command(s.env.LKC, "--root", s.root, "serve", "--listen", migListen, "--token-file", s.token,
		"--bundle-dir", filepath.Join(dir, "bundles"), "--cgroup-parent", "lkc/"+s.env.IDPrefix+"-target")
	if err := s.cmd.Start(); err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond) // it sweeps an empty directory and listens
	return nil
}

func (s *migServer) stop() {
	if s.cmd != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		s.cmd.Wait()
		s.cmd = nil
	}
}

func lkcMigVariant(env *Env, srv *migServer, scenario string, mib int) Variant {
	name := fmt.Sprintf("lkc-%dM", mib)
	src := &ociRuntime{name: "lkc", bin: env.LKC, root: filepath.Join(env.Dir, "state-"+scenario+"-"+name)}
	dst := &ociRuntime{name: "lkc", bin: env.LKC, root: filepath.Join(env.Dir, "migrate", "target")}
	bundle := filepath.Join(env.Dir, "bundle-mig-"+fmt.Sprint(mib))
	return Variant{
		Name: name,
		Desc: fmt.Sprintf("lkc migrate --shared-storage to an lkc serve on loopback, %d MiB", mib),
		Prepare: func() (string, error) {
			if err := makeHolderBundle(env, bundle, mib); err != nil {
				return "", err
			}
			if err := srv.start(); err != nil {
				return "", err
			}
			return src.prepare()
		},
		Run: func(ctx context.Context, iter int) (Sample, error) {
			id := fmt.Sprintf("%s-%s-%s-%d", env.IDPrefix, scenario, name, iter)
			defer src.forceDelete(id)
			defer dst.forceDelete(id)
			if err := startHolder(ctx, env, src, bundle, id, mib); err != nil {
				return Sample{}, err
			}
			return srv.migrate(ctx, src, id, scenario)
		},
		Cleanup: func() error {
			srv.stop()
			dst.deleteAll(env.IDPrefix)
			return src.deleteAll(env.IDPrefix)
		},
	}
}

// migrate runs one lkc migration and returns its downtime or total time:
// post-copy unless it failed here once, then stop-and-copy.
func (s *migServer) migrate(ctx context.Context, src *ociRuntime, id, scenario string) (Sample, error) {
	if s.mode == "" {
		s.mode = "postcopy"
	}
	cmd := src.command(ctx, "migrate", "--token-file", s.token, "--shared-storage", "--mode", s.mode, "--json", id, migListen)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		if s.mode == "postcopy" {
			s.mode = "stopcopy"
		}
		return Sample{}, fmt.Errorf("lkc migrate %s: %w: %s", id, err, strings.TrimSpace(errb.String()))
	}
	var sum struct {
		DowntimeMS float64 `json:"downtime_ms"`
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		return Sample{}, fmt.Errorf("lkc migrate summary %q: %w", out.String(), err)
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if scenario == "migrate-downtime" {
		wall = time.Duration(sum.DowntimeMS * float64(time.Millisecond))
	}
	return Sample{Wall: wall, CPU: cpu}, nil
}

func podmanMigVariant(env *Env, scenario string, mib int) Variant {
	name := fmt.Sprintf("podman-%dM", mib)
	var cgParent string // beneath our own cgroup: Podman's default is the hierarchy root
	podman := func(ctx context.Context, args ...string) *exec.Cmd {
		all := append([]string{"--runtime", "/usr/sbin/runc", "--runtime-flag", "criu=" + criuPath}, args...)
		return exec.CommandContext(ctx, "podman", all...)
	}
	return Variant{
		Name: name,
		Desc: fmt.Sprintf("podman (runc) checkpoint --export, cp, rm, restore --import, %d MiB", mib),
		Prepare: func() (string, error) {
			if _, err := exec.LookPath("podman"); err != nil {
				return "", err
			}
			base, err := ownCgroupBase()
			if err != nil {
				return "", err
			}
			// Named after the run, so the outer cleanup sweeps it.
			cgParent = filepath.Join(base, env.IDPrefix+"-"+name)
			// No registry here: the busybox rootfs becomes a local image,
			// once for all the variants (importing it again under the same
			// name would leave the last one behind, untagged).
			if exec.Command("podman", "image", "exists", podmanImg).Run() != nil {
				imp := exec.Command("sh", "-c", "tar -C "+env.Rootfs+" -c . | podman import - "+podmanImg)
				if out, err := imp.CombinedOutput(); err != nil {
					return "", fmt.Errorf("podman import: %w: %s", err, out)
				}
			}
			out, err := exec.Command("podman", "--version").Output()
			return strings.TrimSpace(string(out)), err
		},
		Run: func(ctx context.Context, iter int) (Sample, error) {
			id := fmt.Sprintf("%s-%s-%s-%d", env.IDPrefix, scenario, name, iter)
			defer exec.Command("podman", "rm", "-f", id).Run()
			run := podman(ctx, append([]string{"run", "-d", "--name", id, "--network", "none", "--cgroup-parent", cgParent,
				"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", podmanImg}, holderArgs(mib)...)...)
			if out, err := run.CombinedOutput(); err != nil {
				return Sample{}, fmt.Errorf("podman run: %w: %s", err, out)
			}
			if err := waitPodmanHolding(id, mib, env.Timeout); err != nil {
				return Sample{}, err
			}
			return podmanMove(ctx, env, podman, id)
		},
		Cleanup: func() error {
			exec.Command("podman", "rmi", "-f", podmanImg).Run()
			// The --cgroup-parent, with conmon's cgroup, which Podman keeps.
			for _, note := range sweepCgroups("/sys/fs/cgroup", filepath.Base(cgParent)) {
				if !strings.HasPrefix(note, "removed ") {
					return errors.New(note)
				}
			}
			return nil
		},
	}
}

// waitPodmanHolding waits for the container's dd through its cgroup,
// which podman names after the container's full id.
func waitPodmanHolding(name string, mib int, timeout time.Duration) error {
	out, err := exec.Command("podman", "inspect", "--format", "{{.Id}}", name).Output()
	if err != nil {
		return fmt.Errorf("podman inspect %s: %w", name, err)
	}
	// cgroupfs driver: .../libpod-<id>
	return waitHolding("libpod-"+strings.TrimSpace(string(out)), int64(mib)<<20, timeout)
}

// podmanMove is the Podman way of moving a container; its downtime is
// the whole of it.
func podmanMove(ctx context.Context, env *Env, podman func(context.Context, ...string) *exec.Cmd, id string) (Sample, error) {
	tar := filepath.Join(env.Dir, id+".tar.gz")
	moved := tar + ".moved"
	defer os.Remove(tar)
	defer os.Remove(moved)
	var cpu time.Duration
	start := time.Now()
	for _, cmd := range []*exec.Cmd{
		podman(ctx, "container", "checkpoint", "--export", tar, id),
		exec.CommandContext(ctx, "cp", tar, moved),
		podman(ctx, "rm", "-f", id),
		podman(ctx, "container", "restore", "--import", moved),
	} {
		if out, err := cmd.CombinedOutput(); err != nil {
			return Sample{}, fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, out)
		}
		cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return Sample{Wall: time.Since(start), CPU: cpu}, nil
}
