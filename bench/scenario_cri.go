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

// criCalls are the CRI calls of a pod's start and teardown, as crictl
// commands and as gRPC methods; through crictl each is a process and
// one round trip.
var criCalls = map[string]map[string][]string{
	"crictl": {
		"start":    {"runp", "create", "start"},
		"teardown": {"stop", "rm", "stopp", "rmp"},
	},
	"grpc": {
		"start":    {"RunPodSandbox", "CreateContainer", "StartContainer"},
		"teardown": {"StopContainer", "RemoveContainer", "StopPodSandbox", "RemovePodSandbox"},
	},
}

// criScenario measures a pod's start and teardown through containerd's
// CRI plugin, with each runtime as the pod's handler (the runc v2 shim
// with BinaryName), on Debian's containerd 1.6 and on containerd 2.x side
// by side, driven two ways: over gRPC as the kubelet does, and by crictl
// as the reference a person can repeat.
func criScenario() Scenario {
	var ratios [][2]string
	for _, b := range criBuildTags() {
		for _, kind := range []string{"grpc-", ""} {
			for _, half := range []string{"start", "teardown"} {
				for _, other := range []string{"runc", "crun", "lkc-base"} {
					ratios = append(ratios, [2]string{"lkc-" + b + "-" + kind + half, other + "-" + b + "-" + kind + half})
				}
			}
		}
	}
	return Scenario{
		Name: "cri",
		Desc: "pod start (RunPodSandbox, CreateContainer, StartContainer of a busybox sleep) and teardown " +
			"(StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox) through containerd's CRI plugin, " +
			"over gRPC (-grpc-) and by crictl, each runtime the pod's handler; containerd 1.6 and " + cri.Containerd2Version,
		Ratios: ratios,
		CPU:    "CPU time of the cgroup of containerd, its shims, the runtime processes and the pods; the client's own (crictl, the benchmark's gRPC) not included",
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
				drivers := map[string]podDriver{"grpc": grpcPods{lab}, "crictl": crictlPods{lab}}
				vs = append(vs, tripVariant(env, lab, tag, "grpc"), tripVariant(env, lab, tag, "crictl"))
				for _, h := range handlers {
					for _, kind := range []string{"grpc", "crictl"} {
						for _, half := range []string{"start", "teardown"} {
							vs = append(vs, podVariant(env, lab, drivers[kind], kind, h.Name, tag, half))
						}
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

// tripVariant times one CRI round trip by kind: over gRPC the Version
// call on the lab's connection, by crictl `crictl version`, which adds
// crictl's own start; every call of a pod's start and teardown holds one.
func tripVariant(env *Env, lab *criLab, tag, kind string) Variant {
	name := kind + "-" + tag
	desc := "the CRI Version call on the benchmark's gRPC connection: one round trip"
	trip := func(ctx context.Context) error { return grpcPods{lab}.version(ctx) }
	if kind == "crictl" {
		desc = "crictl version: crictl's own start and one CRI round trip"
		trip = func(ctx context.Context) error { _, err := lab.crictl(ctx, "version"); return err }
	}
	return Variant{
		Name:    name,
		Desc:    desc + " (containerd " + tag + ")",
		Prepare: func() (string, error) { return "", lab.acquire() },
		Run: func(ctx context.Context, iter int) (Sample, error) {
			ctx, cancel := context.WithTimeout(ctx, env.Timeout)
			defer cancel()
			s, err := lab.timed(func() error { return trip(ctx) })
			if err == nil && iter >= env.Warmup {
				lab.samples[name] = append(lab.samples[name], s.Wall)
			}
			return s, err
		},
		Cleanup: lab.release,
	}
}

// podVariant runs a pod with handler rt through its start and teardown,
// driven by d (kind "grpc" or "crictl"), and times half of it ("start"
// or "teardown"; the other half is done untimed).
func podVariant(env *Env, lab *criLab, d podDriver, kind, rt, tag, half string) Variant {
	name := rt + "-" + tag + "-" + half
	if kind == "grpc" {
		name = rt + "-" + tag + "-grpc-" + half
	}
	calls := criCalls[kind][half]
	return Variant{
		Name: name,
		Desc: fmt.Sprintf("handler %s, containerd %s: %s %s", rt, tag, kind, strings.Join(calls, ", ")),
		Prepare: func() (string, error) {
			return "", lab.acquire()
		},
		Run: func(ctx context.Context, iter int) (Sample, error) {
			ctx, cancel := context.WithTimeout(ctx, env.Timeout)
			defer cancel()
			s, err := lab.podRound(ctx, d, rt, fmt.Sprintf("%s-%d", name, iter), half)
			if err == nil && iter >= env.Warmup {
				lab.samples[name] = append(lab.samples[name], s.Wall)
			}
			return s, err
		},
		Cleanup: lab.release,
		Notes: func() string {
			trip, own := middle(lab.samples[kind+"-"+tag]), middle(lab.samples[name])
			if trip == 0 || own == 0 {
				return ""
			}
			return fmt.Sprintf("wall p50 less %d %s round trips (%d × %s-%s's p50, %.1f ms): %.1f ms",
				len(calls), kind, len(calls), kind, tag, ms(trip), ms(own-time.Duration(len(calls))*trip))
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

// criPod is a pod being driven: its sandbox's id and its container's,
// each set as soon as it is known.
type criPod struct{ id, ctr string }

// podDriver drives a pod through the CRI: crictl (a process and a round
// trip per call, as a person at a terminal does) or gRPC (calls on one
// connection, as the kubelet does).
type podDriver interface {
	// start runs a sandbox with handler rt, creates the container in it
	// and starts that.
	start(ctx context.Context, rt, name string, p *criPod) error
	// running checks that the started container runs.
	running(ctx context.Context, p *criPod) error
	// teardown stops and removes the container, then the sandbox.
	teardown(ctx context.Context, p *criPod) error
	// remove stops and removes what a failed step left of the pod.
	remove(ctx context.Context, p *criPod)
}

// podRound starts pod name with handler rt (a sandbox and one container
// running busybox sleep) through d and tears it down, timing half. A pod
// a failed step left is removed, untimed.
func (l *criLab) podRound(ctx context.Context, d podDriver, rt, name, half string) (Sample, error) {
	var p criPod
	torn := false
	defer func() {
		if p.id != "" && !torn {
			d.remove(context.Background(), &p)
		}
	}()
	steps := []struct {
		half string
		f    func() error
	}{
		{"start", func() error { return d.start(ctx, rt, name, &p) }},
		{"teardown", func() error { err := d.teardown(ctx, &p); torn = err == nil; return err }},
	}
	var s Sample
	var err error
	for _, step := range steps {
		if step.half == half {
			s, err = l.timed(step.f)
		} else {
			err = step.f()
		}
		if err == nil && step.half == "start" {
			err = d.running(ctx, &p) // untimed: the kubelet learns it from events
		}
		if err != nil {
			return Sample{}, err
		}
	}
	return s, nil
}

// crictlPods drives pods with crictl, from config files written per pod.
type crictlPods struct{ l *criLab }

func (c crictlPods) start(ctx context.Context, rt, name string, p *criPod) error {
	podConf, ctrConf, err := c.l.writeConfigs(name)
	if err != nil {
		return err
	}
	out, err := c.l.crictl(ctx, "runp", "--runtime", rt, podConf)
	if err != nil {
		return err
	}
	p.id = strings.TrimSpace(out)
	c.l.pods = append(c.l.pods, p.id)
	if out, err = c.l.crictl(ctx, "create", p.id, ctrConf, podConf); err != nil {
		return err
	}
	p.ctr = strings.TrimSpace(out)
	_, err = c.l.crictl(ctx, "start", p.ctr)
	return err
}

func (c crictlPods) running(ctx context.Context, p *criPod) error {
	out, err := c.l.crictl(ctx, "inspect", "-o", "go-template", "--template", "{{.status.state}}", p.ctr)
	if err == nil && strings.TrimSpace(out) != "CONTAINER_RUNNING" {
		err = fmt.Errorf("container %s of pod %s is %q after crictl start, want CONTAINER_RUNNING", p.ctr, p.id, strings.TrimSpace(out))
	}
	return err
}

func (c crictlPods) teardown(ctx context.Context, p *criPod) error {
	for _, args := range [][]string{{"stop", p.ctr}, {"rm", p.ctr}, {"stopp", p.id}, {"rmp", p.id}} {
		if _, err := c.l.crictl(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

func (c crictlPods) remove(ctx context.Context, p *criPod) {
	c.l.crictl(ctx, "stopp", p.id)
	c.l.crictl(ctx, "rmp", "-f", p.id)
}

// writeConfigs writes pod name's PodSandboxConfig and its container's
// ContainerConfig as crictl reads them: the gRPC driver's, in JSON.
func (l *criLab) writeConfigs(name string) (pod, ctr string, err error) {
	pod, ctr = filepath.Join(l.dir, "pod-"+name+".json"), filepath.Join(l.dir, "ctr-"+name+".json")
	for file, v := range map[string]any{pod: l.podConfig(name), ctr: l.containerConfig()} {
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
