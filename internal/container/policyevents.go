package container

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"time"
)

// policyTick is how often `lkc events` looks for new lines the daemon's
// OOM policy service appended to the container's events.jsonl.
const policyTick = 100 * time.Millisecond

// policyLog follows <root>/<id>/events.jsonl from where it ended when the
// stream started: the daemon's policy events (docs/oom.md), already in
// the envelope of Event.
type policyLog struct {
	path string
	off  int64
	part []byte
}

func newPolicyLog(root, id string) *policyLog {
	l := &policyLog{path: filepath.Join(root, id, "events.jsonl")}
	if fi, err := os.Stat(l.path); err == nil {
		l.off = fi.Size()
	}
	return l
}

// next returns the events appended since the last call. A log that got
// shorter was rotated: it is read from its start.
func (l *policyLog) next() []*Event {
	f, err := os.Open(l.path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() < l.off {
		l.off, l.part = 0, nil
	}
	b, err := io.ReadAll(io.NewSectionReader(f, l.off, 1<<30))
	if err != nil {
		return nil
	}
	l.off += int64(len(b))
	b = append(l.part, b...)
	end := bytes.LastIndexByte(b, '\n') + 1
	l.part = append([]byte(nil), b[end:]...)
	var out []*Event
	for _, line := range bytes.Split(b[:end], []byte("\n")) {
		var ev struct {
			Type string          `json:"type"`
			ID   string          `json:"id"`
			Data json.RawMessage `json:"data"`
		}
		if json.Unmarshal(line, &ev) == nil && ev.Type != "" {
			out = append(out, &Event{Type: ev.Type, ID: ev.ID, Data: ev.Data})
		}
	}
	return out
}
