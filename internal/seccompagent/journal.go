package seccompagent

import (
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/fdstore"
)

const (
	// slotSize is one listener's record in the journal: id, arg0, pid and
	// the in-flight mark, padded to a cache line.
	slotSize = 64
	// maxListeners bounds the journal; the memfd is sparse, so only the
	// pages of slots in use cost memory.
	maxListeners = 4096
	journalSize  = slotSize * maxListeners
)

// journal is the in-flight record shared with the holder: slot i belongs
// to the listener stored under a key ending in /i. Before answering a
// notification the agent writes its id, caller and buffer into the slot
// and marks it; after the answer it clears the mark. A successor finds the
// marked slots of a killed agent and answers them, because the kernel never
// offers a received notification again: its caller would sleep forever.
type journal struct {
	f    *os.File
	mem  []byte
	used []bool
}

// openJournal maps f, or a new memfd when f is nil.
func openJournal(f *os.File) (*journal, error) {
	f, mem, err := fdstore.MapShared(f, "lkc-seccomp-journal", journalSize)
	if err != nil {
		return nil, fmt.Errorf("seccomp journal: %w", err)
	}
	return &journal{f: f, mem: mem, used: make([]bool, maxListeners)}, nil
}

func (j *journal) close() {
	unix.Munmap(j.mem)
	j.f.Close()
}

// take reserves a free slot for a new listener; false when all are taken.
func (j *journal) take() (int, bool) {
	for i, u := range j.used {
		if !u {
			j.used[i] = true
			return i, true
		}
	}
	return 0, false
}

// free gives a dropped listener's slot back, unmarked.
func (j *journal) free(i int) {
	j.clear(i)
	j.used[i] = false
}

// record marks notification n in flight in slot i. The mark is stored
// last, so a slot is never marked with a half-written record.
func (j *journal) record(i int, n *notif) {
	id, arg0, pid, mark := slotWords(j.mem, i)
	atomic.StoreUint64(id, n.id)
	atomic.StoreUint64(arg0, n.args[0])
	atomic.StoreUint32(pid, n.pid)
	atomic.StoreUint32(mark, 1)
}

func (j *journal) clear(i int) {
	_, _, _, mark := slotWords(j.mem, i)
	atomic.StoreUint32(mark, 0)
}

// inFlight returns the notification left marked in slot i, if any: a
// sysinfo call of the native architecture, the only kind recorded.
func (j *journal) inFlight(i int) (notif, bool) {
	id, arg0, pid, mark := slotWords(j.mem, i)
	if atomic.LoadUint32(mark) == 0 {
		return notif{}, false
	}
	n := notif{id: atomic.LoadUint64(id), pid: atomic.LoadUint32(pid), nr: unix.SYS_SYSINFO, arch: nativeArch}
	n.args[0] = atomic.LoadUint64(arg0)
	return n, true
}
