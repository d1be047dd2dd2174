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
	before.observe(rec, PidCount{}, 10, 100)
	before.observe(rec, PidCount{}, 40, 200)
	before.observe(rec, PidCount{}, 40, 200)
	if rec.saves != 2 || rec.c != (PidCount{Pid: 40, Start: 200, Forks: 40}) {
		t.Fatalf("record %+v after %d saves", rec.c, rec.saves)
	}
	var after pidCounter // the successor's, for the same container
	if pid, forks := after.observe(rec, PidCount{}, 1, 50); pid != 40 || forks != 40 {
		t.Errorf("after a restart with only pid 1 left: last pid %d, processes %d; want 40, 40", pid, forks)
	}
	if pid, forks := after.observe(rec, PidCount{}, 45, 300); pid != 45 || forks != 45 {
		t.Errorf("a new thread 45: last pid %d, processes %d; want 45, 45", pid, forks)
	}
	var alone pidCounter
	if pid, forks := alone.observe(nil, PidCount{}, 7, 10); pid != 7 || forks != 7 {
		t.Errorf("without a record: last pid %d, processes %d; want 7, 7", pid, forks)
	}
}

// TestPidCounterCarried: a restored container's counter goes on from
// the count its checkpoint kept, from the restore on: its restored
// threads (older, whatever their pids) are no new forks, a thread after
// it moves the count on; a record of the restored container's own wins.
func TestPidCounterCarried(t *testing.T) {
	from := PidCount{Pid: 40, Start: 500, Forks: 60}
	var c pidCounter
	if pid, forks := c.observe(&memRecord{}, from, 7, 480); pid != 40 || forks != 60 {
		t.Errorf("restored thread 7: last pid %d, processes %d; want 40, 60", pid, forks)
	}
	if pid, forks := c.observe(nil, from, 41, 510); pid != 41 || forks != 61 {
		t.Errorf("new thread 41: last pid %d, processes %d; want 41, 61", pid, forks)
	}
	var own pidCounter
	rec := &memRecord{c: PidCount{Pid: 50, Start: 600, Forks: 70}, ok: true}
	if pid, forks := own.observe(rec, from, 7, 480); pid != 50 || forks != 70 {
		t.Errorf("with a record: last pid %d, processes %d; want 50, 70", pid, forks)
	}
}
