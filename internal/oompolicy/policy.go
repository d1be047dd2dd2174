// Package oompolicy is the daemon's OOM policy service: per adopted
// container it turns the kernel's OOM killer off, waits for the kernel's
// notification that the container is out of memory and applies the
// container's policy (docs/oom.md). This file is the policy syntax, a
// leaf: it reads annotations and the host defaults and touches nothing.
package oompolicy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lkc-containers/lkc/internal/hostconf"
)

// The annotations besides hostconf.AnnotationOOMPolicy.
const (
	AnnotationFallback = "org.lkc.oom-fallback"
	AnnotationDeadline = "org.lkc.oom-deadline"
)

// Kind names a policy.
type Kind string

// The policies.
const (
	Kernel      Kind = "kernel"
	KillLargest Kind = "kill-largest"
	KillNewest  Kind = "kill-newest"
	Grow        Kind = "grow"
	Checkpoint  Kind = "checkpoint"
	Notify      Kind = "notify"
)

// Policy is one parsed policy.
type Policy struct {
	Kind    Kind
	Ceiling uint64 // grow: the limit it never raises past, in bytes
	Dir     string // checkpoint: where images go ("" means oom.checkpoint-dir)
	Command string // notify: run by /bin/sh -c
}

func (p Policy) String() string {
	switch p.Kind {
	case Grow:
		return "grow:" + strconv.FormatUint(p.Ceiling, 10)
	case Checkpoint:
		if p.Dir != "" {
			return "checkpoint:" + p.Dir
		}
	case Notify:
		return "notify:" + p.Command
	}
	return string(p.Kind)
}

// Settings are what a container's OOMs are handled with.
type Settings struct {
	Policy   Policy
	Fallback Policy // kernel, kill-largest or kill-newest: what acts when Policy fails or overruns
	Deadline time.Duration
}

// Parse reads a policy value.
func Parse(v string) (Policy, error) {
	name, arg, hasArg := strings.Cut(v, ":")
	p := Policy{Kind: Kind(name)}
	switch p.Kind {
	case Kernel, KillLargest, KillNewest:
		if hasArg {
			return p, fmt.Errorf("%q: %s takes no argument", v, name)
		}
	case Grow:
		n, err := ParseSize(arg)
		if err != nil || !hasArg {
			return p, fmt.Errorf("%q: use grow:<ceiling> with a size such as 512M", v)
		}
		p.Ceiling = n
	case Checkpoint:
		if hasArg && !strings.HasPrefix(arg, "/") {
			return p, fmt.Errorf("%q: use checkpoint:<absolute directory>", v)
		}
		p.Dir = arg
	case Notify:
		if strings.TrimSpace(arg) == "" {
			return p, fmt.Errorf("%q: use notify:<command>", v)
		}
		p.Command = arg
	default:
		return p, fmt.Errorf("%q: use kernel, kill-largest, kill-newest, grow:<ceiling>, checkpoint[:<dir>] or notify:<command>", v)
	}
	return p, nil
}

// parseFallback reads a fallback: a policy that always resolves at once.
func parseFallback(v string) (Policy, error) {
	p, err := Parse(v)
	if err == nil && p.Kind != Kernel && p.Kind != KillLargest && p.Kind != KillNewest {
		err = fmt.Errorf("%q: use kernel, kill-largest or kill-newest (a fallback must act at once)", v)
	}
	return p, err
}

// CheckFallback checks a fallback as `lkc group create/update
// --oom-fallback` takes it.
func CheckFallback(v string) error {
	_, err := parseFallback(v)
	return err
}

// ParseDeadline reads a deadline: a positive Go duration.
func ParseDeadline(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: use a positive duration such as 5s", v)
	}
	return d, nil
}

// Resolve reads a container's settings: each annotation, else the host
// default. An invalid value is an error naming its annotation (or lkc.conf
// key). A grow policy checks oom.grow-reserve too, which lkc.conf takes
// unread: else a bad one would surface only at the first OOM, in the
// daemon's log.
func Resolve(c *hostconf.Conf, annotations map[string]string) (Settings, error) {
	var s Settings
	pick := func(key, def, confKey string) (string, string) {
		if v, ok := annotations[key]; ok {
			return v, "annotation " + key
		}
		return def, "lkc.conf " + confKey
	}
	v, from := pick(hostconf.AnnotationOOMPolicy, c.OOMDefault, "oom.default")
	var err error
	if s.Policy, err = Parse(v); err != nil {
		return s, fmt.Errorf("%s: %w", from, err)
	}
	if s.Policy.Kind == Grow {
		if _, err := Reserve(c.OOMGrowReserve, 1); err != nil {
			return s, fmt.Errorf("lkc.conf %w", err)
		}
	}
	v, from = pick(AnnotationFallback, c.OOMFallback, "oom.fallback")
	if s.Fallback, err = parseFallback(v); err != nil {
		return s, fmt.Errorf("%s: %w", from, err)
	}
	s.Deadline = c.OOMDeadline
	if v, ok := annotations[AnnotationDeadline]; ok {
		if s.Deadline, err = ParseDeadline(v); err != nil {
			return s, fmt.Errorf("annotation %s: %w", AnnotationDeadline, err)
		}
	}
	if s.Policy.Kind == Checkpoint && s.Policy.Dir == "" {
		s.Policy.Dir = c.OOMCheckpointTo
	}
	return s, nil
}

// ParseSize reads a byte count: digits with an optional K, M, G or T
// suffix (powers of 1024, an optional trailing B or iB).
func ParseSize(v string) (uint64, error) {
	s := strings.ToUpper(strings.TrimSpace(v))
	s = strings.TrimSuffix(s, "B")
	s, iec := strings.CutSuffix(s, "I") // only after a unit: 1GiB, not 1iB
	shift := 0
	if n := len(s); n > 0 {
		if i := strings.IndexByte("KMGT", s[n-1]); i >= 0 {
			shift, s = 10*(i+1), s[:n-1]
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || n > (^uint64(0))>>shift || iec && shift == 0 {
		return 0, fmt.Errorf("size %q: use a positive byte count such as 512M", v)
	}
	return n << shift, nil
}

// Reserve reads oom.grow-reserve (a percentage of total or a size) as
// bytes, for a host with total bytes of RAM.
func Reserve(v string, total uint64) (uint64, error) {
	bad := fmt.Errorf("oom.grow-reserve: %q: use a percentage from 0%% to 100%% or a size such as 512M", v)
	if p, ok := strings.CutSuffix(v, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || !(f >= 0 && f <= 100) { // NaN too
			return 0, bad
		}
		return uint64(f / 100 * float64(total)), nil
	}
	n, err := ParseSize(v)
	if err != nil {
		return 0, bad
	}
	return n, nil
}
