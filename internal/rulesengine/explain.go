package rulesengine

import (
	"fmt"
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
	e.mu.Lock()
	rec := e.records[pid]
	if rec == nil || rec.Start != start {
		rec = &Record{Match: rules.Find(e.rules, p, e.users), Action: "not acted on by the rules engine"}
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
