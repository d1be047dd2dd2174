package procfs

import "testing"

// memRecord is a PidRecord in memory: what a daemon's successor finds.
type memRecord struct {
	c     PidCount
	ok    bool
	saves int
}

func (m *memRecord) Load() (PidCount, bool) { return m.c, m.ok }
func (m *memRecord) Store(c PidCount)       { m.c, m.ok = c, true; m.saves++ }

// TestPidCounterRecord: a counter goes on from its record (a new daemon
// serving a container whose threads exited meanwhile shows the last pid
// and processes as before, not the living thread's lower numbers), and
// records each change, none when nothing changed.
func TestPidCounterRecord(t *testing.T) {
	rec := &memRecord{}
	var before pidCounter
	before.observe(rec, 10, 100)
	before.observe(rec, 40, 200)
	before.observe(rec, 40, 200)
	if rec.saves != 2 || rec.c != (PidCount{Pid: 40, Start: 200, Forks: 40}) {
		t.Fatalf("record %+v after %d saves", rec.c, rec.saves)
	}
	var after pidCounter // the successor's, for the same container
	if pid, forks := after.observe(rec, 1, 50); pid != 40 || forks != 40 {
		t.Errorf("after a restart with only pid 1 left: last pid %d, processes %d; want 40, 40", pid, forks)
	}
	if pid, forks := after.observe(rec, 45, 300); pid != 45 || forks != 45 {
		t.Errorf("a new thread 45: last pid %d, processes %d; want 45, 45", pid, forks)
	}
	var alone pidCounter
	if pid, forks := alone.observe(nil, 7, 10); pid != 7 || forks != 7 {
		t.Errorf("without a record: last pid %d, processes %d; want 7, 7", pid, forks)
	}
}
