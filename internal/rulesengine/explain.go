package rulesengine

import (
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/rules"
)

// Explain says which rule placed process pid and why: what the engine
// recorded when it acted on it, or, for a process it has not acted on
// (none of its events came since the engine started), the rule that
// matches it now.
func (e *Engine) Explain(pid int) (*daemonapi.ExplainReply, error) {
	p, start, err := describe(&procReader{}, pid, needAll)
	if err != nil {
		return nil, daemonapi.Errorf(daemonapi.ClassNotExist, fmt.Sprintf("pid %d: no such process", pid))
	}
	notActed := "not acted on by the rules engine"
	if why := e.leftAlone(pid); why != "" {
		notActed = "left alone by the rules engine: " + why
	}
	e.mu.Lock()
	rec := e.records[pid]
	if rec == nil || rec.Start != start {
		rec = &Record{Match: rules.Find(e.rules, p, e.users), Action: notActed}
	}
	e.mu.Unlock()
	r := &daemonapi.ExplainReply{Pid: pid, Action: rec.action()}
	if !rec.When.IsZero() {
		r.When = rec.When.UTC().Format(time.RFC3339Nano)
	}
	if m := rec.Match; m != nil {
		r.Rule = fmt.Sprintf("%s:%d: %s", m.Rule.File, m.Rule.Line, m.Rule.Text)
		r.Why = m.Why
		for _, t := range m.Targets {
			r.Targets = append(r.Targets, targetString(t))
		}
	}
	return r, nil
}

// leftAlone says why the engine never acts on process pid, whatever rule
// matches it, as classify decides before matching; "" when it would act.
// It reads /proc itself: the engine's reader belongs to classify.
func (e *Engine) leftAlone(pid int) string {
	if slices.Contains(e.self, pid) {
		return "the daemon's own process"
	}
	if kernelThread(pid) {
		return "a kernel thread"
	}
	if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err == nil && ns != e.pidNS {
		return "in another pid namespace (a container's)"
	}
	cur, err := cgroupsOf(&procReader{}, pid, nil)
	if err != nil || e.anyInScope(cur) {
		return ""
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprintf("its cgroups are outside rules.scope %v", e.scope)
}

func targetString(t rules.Target) string {
	if t.Kind == "cgroup" {
		return fmt.Sprintf("cgroup %s in %v", t.Name, t.Controllers)
	}
	return t.Kind + " " + t.Name
}

// Status is the engine's counters, with the latency percentiles.
func (e *Engine) Status() *daemonapi.Rules {
	e.mu.Lock()
	s := e.stats
	lat := slices.Clone(s.latencies)
	e.mu.Unlock()
	r := &daemonapi.Rules{Rules: s.Rules, Moved: s.Moved, Swept: s.Swept, Failed: s.Failed,
		Overruns: s.Overruns, Resubscribes: s.Resubscribes, Scans: s.Scans, Samples: len(lat)}
	if len(lat) > 0 {
		slices.Sort(lat)
		at := func(q float64) int64 { return lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds() }
		r.LatencyP50us, r.LatencyP99us, r.LatencyMaxus = at(0.5), at(0.99), lat[len(lat)-1].Microseconds()
	}
	return r
}
