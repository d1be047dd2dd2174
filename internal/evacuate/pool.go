package evacuate

import (
	"context"
	"sync"
	"time"
)

// each runs fn on every item, at most n at a time (n < 1 is 1), and
// returns when all it started are done. Once ctx ends (a signal), it
// starts no more: those running finish, as a dump or restore stopped
// half way would leave its container frozen or half made.
func each[T any](ctx context.Context, items []T, n int, fn func(T)) {
	if n < 1 {
		n = 1
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, it := range items {
		if !acquire(ctx, sem) {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(it)
		}()
	}
	wg.Wait()
}

// acquire takes a slot of sem, unless ctx ends first or has ended.
func acquire(ctx context.Context, sem chan struct{}) bool {
	select {
	case <-ctx.Done():
		return false
	case sem <- struct{}{}:
	}
	if ctx.Err() != nil {
		<-sem
		return false
	}
	return true
}

// tally counts the items of an each that have ended, for the progress
// events its goroutines send, and holds the lock they share.
type tally struct {
	sync.Mutex
	done, total int
	progress    func(Event) // nil is quiet
}

// start reports that item id begins.
func (t *tally) start(id string) {
	t.Lock()
	ev := Event{ID: id, Started: true, Done: t.done, Total: t.total}
	t.Unlock()
	t.send(ev)
}

// end reports that item id ended after took, with err.
func (t *tally) end(id string, err error, took time.Duration) {
	t.Lock()
	t.done++
	ev := Event{ID: id, Err: err, MS: ms(took), Done: t.done, Total: t.total}
	t.Unlock()
	t.send(ev)
}

// skip reports that item id ended after took with nothing to do, why.
func (t *tally) skip(id string, why error, took time.Duration) {
	t.Lock()
	t.done++
	ev := Event{ID: id, Err: why, Skipped: true, MS: ms(took), Done: t.done, Total: t.total}
	t.Unlock()
	t.send(ev)
}

func (t *tally) send(ev Event) {
	if t.progress != nil {
		t.progress(ev)
	}
}
