package procview

import (
	"fmt"
	"os"
	"sync/atomic"

	"github.com/lkc-containers/lkc/internal/fdstore"
	"github.com/lkc-containers/lkc/internal/procfs"
)

// pidsName is the pid book's file in the daemon's run directory.
const pidsName = "proc-pids"

// The pid book keeps each served container's pid count (procfs.PidCount:
// loadavg's last pid and stat's processes) in a file of the run
// directory, mapped shared, so that neither goes back when the daemon is
// killed or stopped and started again: the file outlives both its
// processes (the size book's memfd lives in the holder, which a stop
// ends). Four words per slot: the slot's generation (high 32 bits), a
// mark and the pid, then the start time and the forks. Store writes the
// first word last, so a worker killed between the words leaves the old
// pid with a count at least as high: the next thread counts again from
// the old pid (processes may run ahead by those forks, never back).
const (
	pidSlotWords = 4
	pidBookSize  = bookSlots * pidSlotWords * 8
)

type pidBook struct {
	f   *os.File
	mem []byte
}

// openPidBook maps the pid book of run directory dir, made (sparse) when
// it does not exist yet.
func openPidBook(dir string) (*pidBook, error) {
	name := dir + "/" + pidsName
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("/proc view's pid book: %w", err)
	}
	if st, err := f.Stat(); err == nil && st.Size() < pidBookSize {
		err = f.Truncate(pidBookSize)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("/proc view's pid book %s: %w", name, err)
	}
	f, mem, err := fdstore.MapShared(f, pidsName, pidBookSize)
	if err != nil {
		return nil, fmt.Errorf("/proc view's pid book %s: %w", name, err)
	}
	return &pidBook{f: f, mem: mem}, nil
}

// record is slot n's record for generation gen: nil (memory only) for a
// slot beyond the book, or without a book.
func (b *pidBook) record(n int, gen uint64) procfs.PidRecord {
	if b == nil || n < 0 || n >= bookSlots {
		return nil
	}
	return &pidRecord{words: b.mem[n*pidSlotWords*8 : (n+1)*pidSlotWords*8], gen: gen & 0xffffffff}
}

type pidRecord struct {
	words []byte
	gen   uint64
}

// Load returns the count kept for the slot's generation: a record of an
// earlier container of the slot is not its own.
func (r *pidRecord) Load() (procfs.PidCount, bool) {
	head := atomic.LoadUint64(bookWord(r.words, 0))
	if head&bookMark == 0 || head>>32 != r.gen {
		return procfs.PidCount{}, false
	}
	return procfs.PidCount{
		Pid:   int(head & bookMaxSize),
		Start: atomic.LoadUint64(bookWord(r.words, 1)),
		Forks: atomic.LoadUint64(bookWord(r.words, 2)),
	}, true
}

// Store keeps c, the pid word last (see the book's layout).
func (r *pidRecord) Store(c procfs.PidCount) {
	atomic.StoreUint64(bookWord(r.words, 2), c.Forks)
	atomic.StoreUint64(bookWord(r.words, 1), c.Start)
	atomic.StoreUint64(bookWord(r.words, 0), r.gen<<32|bookMark|uint64(c.Pid)&bookMaxSize)
}
