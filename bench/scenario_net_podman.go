package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// podmanRunVariant is `podman run --rm` of /bin/true on the busybox rootfs
// with runc, on network n (a CNI network of the same plugins as lkc's,
// in a configuration directory of the run), or with --network none when
// n is nil. The rlimits are lkc's defaults: Podman's own are above the
// hard limits here, which root without CAP_SYS_RESOURCE cannot raise. Its cgroups go beneath the benchmark's own (Podman's default
// parent is the hierarchy root) and are swept at the end.
func podmanRunVariant(env *Env, name string, n *benchNetwork) Variant {
	confDir := filepath.Join(env.Dir, "podman.d")
	var cgParent string
	network := "none"
	if n != nil {
		network = n.name
	}
	command := func(ctx context.Context, args ...string) *exec.Cmd {
		all := append([]string{"--network-config-dir", confDir, "--runtime", "/usr/sbin/runc"}, args...)
		return exec.CommandContext(ctx, "podman", all...)
	}
	return Variant{
		Name: name,
		Desc: "podman run --rm --network " + network + " --rootfs ROOTFS /bin/true (runc)",
		Prepare: func() (string, error) {
			if _, err := exec.LookPath("podman"); err != nil {
				return "", err
			}
			if out, err := exec.Command("podman", "info", "--format", "{{.Host.NetworkBackend}}").Output(); err != nil ||
				strings.TrimSpace(string(out)) != "cni" {
				return "", fmt.Errorf("podman's network backend is %q, not cni: %v", strings.TrimSpace(string(out)), err)
			}
			base, err := ownCgroupBase()
			if err != nil {
				return "", err
			}
			// Named after the run, so the outer cleanup sweeps it too.
			cgParent = filepath.Join(base, env.IDPrefix+"-"+name+"-cg")
			if n != nil {
				if err := n.write(confDir); err != nil {
					return "", fmt.Errorf("writing network %s: %w", n.name, err)
				}
			}
			out, err := exec.Command("podman", "--version").Output()
			return strings.TrimSpace(string(out)), err
		},
		Run: func(ctx context.Context, iter int) (Sample, error) {
			ctx, cancel := context.WithTimeout(ctx, env.Timeout)
			defer cancel()
			id := fmt.Sprintf("%s-%s-%d", env.IDPrefix, name, iter)
			s, err := env.runner.measure(command(ctx, "run", "--rm", "--name", id, "--network", network,
				"--cgroup-parent", cgParent, "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
				"--rootfs", env.Rootfs, "/bin/true"))
			if err != nil {
				exec.Command("podman", "rm", "-f", id).Run()
			}
			return s, err
		},
		Cleanup: func() error {
			var errs []error
			out, _ := exec.Command("podman", "ps", "-a", "-q", "--filter", "name=^"+env.IDPrefix+"-"+name+"-[0-9]+$").Output()
			for _, c := range strings.Fields(string(out)) {
				if err := command(context.Background(), "rm", "-f", c).Run(); err != nil {
					errs = append(errs, fmt.Errorf("podman rm %s: %w", c, err))
				}
			}
			if n != nil {
				n.removeBridge()
			}
			// The --cgroup-parent, with conmon's cgroups, which Podman keeps.
			for _, note := range sweepCgroups("/sys/fs/cgroup", filepath.Base(cgParent)) {
				if !strings.HasPrefix(note, "removed ") {
					errs = append(errs, errors.New(note))
				}
			}
			return errors.Join(errs...)
		},
	}
}
