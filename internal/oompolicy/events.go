package oompolicy

import (
	"encoding/json"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// eventsFile is the container's policy event log beside state.json, read
// by `lkc events`.
const eventsFile = "events.jsonl"

// maxEvents caps the log: past it, the file becomes events.jsonl.1.
const maxEvents = 1 << 20

// emit appends one event to the container's log with one O_APPEND write
// (whole lines even with several writers) and logs it.
func (s *Service) emit(a *armed, typ string, data map[string]any) {
	data["time"] = time.Now().UTC().Format(time.RFC3339Nano)
	data["uptime"] = uptime()
	line, _ := json.Marshal(map[string]any{"type": typ, "id": a.e.ID, "data": data})
	s.deps.Logf("oom: %s", line)
	if fi, err := os.Stat(a.events); err == nil && fi.Size() > maxEvents {
		os.Rename(a.events, a.events+".1")
	}
	f, err := os.OpenFile(a.events, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		s.deps.Logf("oom: %s: event log: %v", a.name(), err)
		return
	}
	defer f.Close()
	f.Write(append(line, '\n'))
}

// uptime is CLOCK_BOOTTIME in seconds, the clock of /proc/uptime, which a
// process inside the container reads too: it lets a test time the action
// from the allocation.
func uptime() float64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}
