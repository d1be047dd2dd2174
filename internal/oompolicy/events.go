package oompolicy

import (
	"encoding/json"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/eventlog"
)

// eventsFile is the container's policy event log beside state.json, read
// by `lkc events` (format: internal/eventlog).
const eventsFile = "events.jsonl"

// emit appends one event to the container's or group's log and logs it.
func (s *Service) emit(a *armed, typ string, data map[string]any) {
	data["time"] = time.Now().UTC().Format(time.RFC3339Nano)
	data["uptime"] = uptime()
	line, _ := json.Marshal(map[string]any{"type": typ, "id": a.e.ID, "data": data})
	s.deps.Logf("oom: %s", line)
	if err := eventlog.Append(a.events, line); err != nil {
		s.deps.Logf("oom: %s: %v", a.name(), err)
	}
}

// uptime is CLOCK_BOOTTIME in seconds, the clock of /proc/uptime, which a
// process inside the container reads too: it lets a test time the action
// from the allocation.
func uptime() float64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}
