package container

import (
	"path/filepath"
	"time"

	"github.com/lkc-containers/lkc/internal/eventlog"
)

// policyTick is how often `lkc events` looks for new lines the daemon's
// OOM policy service appended to the container's events.jsonl.
const policyTick = 100 * time.Millisecond

// policyLog follows <root>/<id>/events.jsonl from where it ended when the
// stream started: the daemon's policy events (docs/oom.md).
type policyLog struct{ r *eventlog.Reader }

func newPolicyLog(root, id string) *policyLog {
	return &policyLog{eventlog.Follow(filepath.Join(root, id, "events.jsonl"))}
}

// next returns the events appended since the last call.
func (l *policyLog) next() []*Event {
	var out []*Event
	for _, rec := range l.r.Next() {
		out = append(out, &Event{Type: rec.Type, ID: rec.ID, Data: rec.Data})
	}
	return out
}
