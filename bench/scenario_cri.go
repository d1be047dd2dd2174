package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lkc-containers/lkc/internal/testutil/cri"
)

// criCalls are the crictl commands of a pod's start and teardown: each
// is a crictl process and one CRI round trip.
var criCalls = map[string][]string{
	"start":    {"runp", "create", "start"},
	"teardown": {"stop", "rm", "stopp", "rmp"},
}

// criScenario measures a pod's start and teardown through containerd's
// CRI plugin, driven by crictl as the kubelet drives the CRI, with each
// runtime as the pod's handler (the runc v2 shim with BinaryName), on
// Debian's containerd 1.6 and on containerd 2.x side by side.
func criScenario() Scenario {
	var ratios [][2]string
	for _, b := range criBuildTags() {
		for _, half := range []string{"start", "teardown"} {
			for _, other := range []string{"runc", "crun", "lkc-base"} {
				ratios = append(ratios, [2]string{"lkc-" + b + "-" + half, other + "-" + b + "-" + half})
			}
		}
	}
	return Scenario{
		Name: "cri",
		Desc: "pod start (crictl runp, create, start of a busybox sleep) and teardown (crictl stop, rm, stopp, rmp) " +
			"through containerd's CRI plugin, each runtime the pod's handler; containerd 1.6 and " + cri.Containerd2Version,
		Ratios: ratios,
		CPU:    "CPU time of the cgroup of containerd, its shims, the runtime processes and the pods; crictl's own not included",
		Variants: func(env *Env) []Variant {
			handlers := []cri.Handler{{Name: "lkc", Binary: env.LKC}, {Name: "runc", Binary: lookPath("runc")},
				{Name: "crun", Binary: lookPath("crun")}}
			if env.Baseline != "" {
				handlers = append(handlers, cri.Handler{Name: "lkc-base", Binary: env.Baseline})
			}
			images := &criImages{}
			var vs []Variant
			for i, b := range cri.Builds(nil) {
				lab := &criLab{env: env, build: b, index: i, handlers: handlers, images: images}
				tag := criBuildTags()[i]
				vs = append(vs, crictlVariant(env, lab, tag))
				for _, h := range handlers {
					for _, half := range []string{"start", "teardown"} {
						vs = append(vs, podVariant(env, lab, h.Name, tag, half))
					}
				}
			}
			return vs
		},
	}
}

// criBuildTags name cri.Builds' containerds in variant names: 1.6, 2.4.
func criBuildTags() []string {
	var tags []string
	for _, b := range cri.Builds(nil) {
		major, rest, _ := strings.Cut(strings.TrimPrefix(b.Name, "v"), ".")
		minor, _, _ := strings.Cut(rest, ".")
		tags = append(tags, major+"."+minor)
	}
	return tags
}

// lookPath is the absolute path of a runtime, which containerd's config
// needs; a missing one keeps its name and fails the variant's runs.
func lookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return name
}

// crictlVariant times `crictl version`: crictl's own start and one round
// trip to the CRI plugin, which every crictl call of a pod's start and
// teardown holds too.
func crictlVariant(env *Env, lab *criLab, tag string) Variant {
	name := "crictl-" + tag
	return Variant{
		Name:    name,
		Desc:    "crictl version: crictl's own start and one CRI round trip (containerd " + tag + ")",
		Prepare: func() (string, error) { return "", lab.acquire() },
		Run: func(ctx context.Context, iter int) (Sample, error) {
			ctx, cancel := context.WithTimeout(ctx, env.Timeout)
			defer cancel()
			s, err := lab.timed(func() error { _, err := lab.crictl(ctx, "version"); return err })
			if err == nil && iter >= env.Warmup {
				lab.samples[name] = append(lab.samples[name], s.Wall)
			}
			return s, err
		},
		Cleanup: lab.release,
	}
}

// podVariant runs a pod with handler rt through its start and teardown,
// and times half of it ("start" or "teardown"; the other half is done
// untimed).
func podVariant(env *Env, lab *criLab, rt, tag, half string) Variant {
	name := rt + "-" + tag + "-" + half
	calls := criCalls[half]
	return Variant{
		Name: name,
		Desc: fmt.Sprintf("handler %s, containerd %s: crictl %s", rt, tag, strings.Join(calls, ", ")),
		Prepare: func() (string, error) {
			return "", lab.acquire()
		},
		Run: func(ctx context.Context, iter int) (Sample, error) {
			ctx, cancel := context.WithTimeout(ctx, env.Timeout)
			defer cancel()
			s, err := lab.podRound(ctx, rt, fmt.Sprintf("%s-%d", name, iter), half)
			if err == nil && iter >= env.Warmup {
				lab.samples[name] = append(lab.samples[name], s.Wall)
			}
			return s, err
		},
		Cleanup: lab.release,
		Notes: func() string {
			trip, own := middle(lab.samples["crictl-"+tag]), middle(lab.samples[name])
			if trip == 0 || own == 0 {
				return ""
			}
			return fmt.Sprintf("wall p50 less %d crictl round trips (%d × crictl-%s's p50, %.1f ms): %.1f ms",
				len(calls), len(calls), tag, ms(trip), ms(own-time.Duration(len(calls))*trip))
		},
	}
}

// timed runs f and returns its wall time and the CPU time the lab's
// cgroup (containerd, its shims, the runtimes and the pods) spent
// meanwhile.
func (l *criLab) timed(f func() error) (Sample, error) {
	u0, err := l.acct.usage(l.cgroup)
	if err != nil {
		return Sample{}, err
	}
	t0 := time.Now()
	err = f()
	s := Sample{Wall: time.Since(t0)}
	u1, uerr := l.acct.usage(l.cgroup)
	if err == nil {
		err = uerr
	}
	s.CPU = u1 - u0
	return s, err
}

// podRound starts pod name with handler rt (a sandbox and one container
// running busybox sleep) and tears it down, timing half. A pod a failed
// step left is removed, untimed.
func (l *criLab) podRound(ctx context.Context, rt, name, half string) (Sample, error) {
	podConf, ctrConf, err := l.writeConfigs(name)
	if err != nil {
		return Sample{}, err
	}
	var pod, ctr string
	defer func() {
		if pod != "" {
			l.crictl(context.Background(), "stopp", pod)
			l.crictl(context.Background(), "rmp", "-f", pod)
		}
	}()
	start := func() error {
		out, err := l.crictl(ctx, "runp", "--runtime", rt, podConf)
		if err != nil {
			return err
		}
		pod = strings.TrimSpace(out)
		l.pods = append(l.pods, pod)
		if out, err = l.crictl(ctx, "create", pod, ctrConf, podConf); err != nil {
			return err
		}
		ctr = strings.TrimSpace(out)
		_, err = l.crictl(ctx, "start", ctr)
		return err
	}
	running := func() error {
		out, err := l.crictl(ctx, "inspect", "-o", "go-template", "--template", "{{.status.state}}", ctr)
		if err == nil && strings.TrimSpace(out) != "CONTAINER_RUNNING" {
			err = fmt.Errorf("container %s of pod %s is %q after crictl start, want CONTAINER_RUNNING", ctr, pod, strings.TrimSpace(out))
		}
		return err
	}
	teardown := func() error {
		for _, args := range [][]string{{"stop", ctr}, {"rm", ctr}, {"stopp", pod}, {"rmp", pod}} {
			if _, err := l.crictl(ctx, args...); err != nil {
				return err
			}
		}
		pod = ""
		return nil
	}
	var s Sample
	for _, step := range []struct {
		half string
		f    func() error
	}{{"start", start}, {"teardown", teardown}} {
		if step.half == half {
			s, err = l.timed(step.f)
		} else {
			err = step.f()
		}
		if err == nil && step.half == "start" {
			err = running() // untimed: the kubelet learns it from events
		}
		if err != nil {
			return Sample{}, err
		}
	}
	return s, nil
}

// writeConfigs writes pod name's PodSandboxConfig and its container's
// ContainerConfig: cgroup parent the lab's pods cgroup, a pid namespace
// of the container's own, busybox sleep.
func (l *criLab) writeConfigs(name string) (pod, ctr string, err error) {
	podCfg := map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": "lkc-bench", "uid": "uid-" + name},
		"hostname":      "bench",
		"log_directory": filepath.Join(l.dir, "pods", name),
		"linux": map[string]any{
			"cgroup_parent":    l.cgroup + "/pods",
			"security_context": map[string]any{"namespace_options": map[string]int{"pid": 1}},
		},
	}
	ctrCfg := map[string]any{
		"metadata": map[string]any{"name": "sleep"},
		"image":    map[string]any{"image": cri.BusyboxImage},
		"command":  []string{"sleep", "3600"},
		"log_path": "sleep.log",
		"linux":    map[string]any{"security_context": map[string]any{"namespace_options": map[string]int{"pid": 1}}},
	}
	pod, ctr = filepath.Join(l.dir, "pod-"+name+".json"), filepath.Join(l.dir, "ctr-"+name+".json")
	for file, v := range map[string]any{pod: podCfg, ctr: ctrCfg} {
		data, err := json.Marshal(v)
		if err == nil {
			err = os.WriteFile(file, data, 0o644)
		}
		if err != nil {
			return "", "", fmt.Errorf("writing %s: %w", file, err)
		}
	}
	return pod, ctr, nil
}

// middle is the median of ds as the report computes it, 0 for none.
func middle(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	slices.Sort(xs)
	return time.Duration(percentile(xs, 50))
}
