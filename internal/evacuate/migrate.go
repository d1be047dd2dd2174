package evacuate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lkc-containers/lkc/internal/container"
	"github.com/lkc-containers/lkc/internal/migrate"
)

// MigrateOpts are the options of `lkc migrate --all`.
type MigrateOpts struct {
	Root string
	// Parallel bounds the migrations under way at a time, Frozen (when
	// above 0) those of them whose container is down (from its freeze
	// until it runs on one side, migrate.Options.Turn): the others copy
	// their rootfs and memory while it runs.
	Parallel, Frozen int
	// DryRun probes the target for every container and moves nothing.
	DryRun bool
	// Migrate is what every migration is told (target, token, mode,
	// ...); its Root and ID are set per container.
	Migrate  migrate.Options
	Progress func(Event)
}

// Move statuses.
const (
	StatusMoved = "moved"
	StatusKept  = "kept" // not moved: it runs here as before (Error says why)
	// StatusInDoubt is a migration whose commit the target did not
	// confirm (migrate.ErrInDoubt): it may run there, and is
	// paused here, off the network, until someone who knows resumes or
	// deletes it.
	StatusInDoubt   = "in doubt"
	StatusWouldMove = "would move"
	StatusWouldFail = "would fail"
)

// Move is what became of one container of an evacuation.
type Move struct {
	ID      string           `json:"id"`
	Status  string           `json:"status"`
	Error   string           `json:"error,omitempty"`
	Summary *migrate.Summary `json:"summary,omitempty"`
}

// Evacuation is the outcome of MigrateAll.
type Evacuation struct {
	Moves   []Move  `json:"moves"`
	TotalMS float64 `json:"total_ms"`
}

// MigrateAll moves every running container of o.Root to o.Migrate.Target,
// at most o.Parallel at a time. First it probes the target for each (the
// checks of the offer, with room for the whole evacuation): a container
// the target would refuse is not touched. Each migration then has its own
// rollback: one that fails leaves its container running here. Once stop
// ends (a first signal), no more probes or migrations start and those
// under way go on; once abort ends (a second), those under way are cut
// off at their next safe point (a dump at CRIU's next notification) and
// rolled back, unless their commit has begun (moveAll).
func MigrateAll(stop, abort context.Context, o MigrateOpts) (*Evacuation, error) {
	start := time.Now()
	ids, err := listRoot(o.Root)
	if err != nil {
		return nil, err
	}
	if o.Migrate.Facts == nil {
		// One reading of this host for every probe and move.
		o.Migrate.Facts = &migrate.FactsCache{}
	}
	ev := &Evacuation{Moves: make([]Move, len(ids))}
	var todo []int
	var batch int64
	for i, id := range ids {
		ev.Moves[i] = Move{ID: id}
		h, err := container.Inspect(o.Root, id)
		if err == nil && h.Status() == container.Paused {
			ev.Moves[i].Status, ev.Moves[i].Error = o.failed(), pausedReason
			continue
		}
		if err == nil && h.Status() != container.Running {
			ev.Moves[i].Status, ev.Moves[i].Error = StatusSkipped, "it is "+h.Status()
			continue
		}
		need, nerr := migrate.Need(o.options(id))
		if err = firstErr(err, nerr); err != nil {
			ev.Moves[i].Status, ev.Moves[i].Error = o.failed(), err.Error()
			if why := goneReason(err, "migration"); why != "" {
				ev.Moves[i].Status, ev.Moves[i].Error = StatusSkipped, why
			}
			continue
		}
		batch += need
		todo = append(todo, i)
	}
	todo = o.probe(stop, abort, ev, todo, batch)
	if !o.DryRun {
		o.moveAll(stop, abort, ev, todo)
		o.late(ev)
	}
	ev.TotalMS = ms(time.Since(start))
	return ev, nil
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (o *MigrateOpts) options(id string) migrate.Options {
	m := o.Migrate
	m.Root, m.ID = o.Root, id
	return m
}

func (o *MigrateOpts) failed() string {
	if o.DryRun {
		return StatusWouldFail
	}
	return StatusKept
}

// probe asks the target about the containers todo indexes and returns
// those it would take; those it did not ask before stop ended are
// recorded as interrupted.
func (o *MigrateOpts) probe(stop, abort context.Context, ev *Evacuation, todo []int, batch int64) []int {
	var mu sync.Mutex
	var ok []int
	each(stop, todo, o.Parallel, func(i int) {
		err := migrate.Probe(abort, o.options(ev.Moves[i].ID), batch)
		mu.Lock()
		defer mu.Unlock()
		if why := o.goneAtProbe(ev.Moves[i].ID, err); why != "" {
			ev.Moves[i].Status, ev.Moves[i].Error = StatusSkipped, why
			return
		}
		if err != nil {
			ev.Moves[i].Status, ev.Moves[i].Error = o.failed(), err.Error()
			if o.paused(ev.Moves[i].ID) {
				ev.Moves[i].Error = pausedReason
			}
			return
		}
		ev.Moves[i].Status = StatusWouldMove
		ok = append(ok, i)
	})
	o.notStarted(ev, todo, "")
	return ok
}

// notStarted records the containers todo indexes that are still in
// status from (none yet, or would move) as not moved: a signal stopped
// the evacuation before their turn.
func (o *MigrateOpts) notStarted(ev *Evacuation, todo []int, from string) {
	for _, i := range todo {
		if ev.Moves[i].Status == from {
			ev.Moves[i].Status, ev.Moves[i].Error = o.failed(), "interrupted (a signal) before its migration began"
		}
	}
}

// pausedReason is why a paused container is not moved. It is kept, not
// skipped: it stays here, with its processes, which an evacuation is to
// take away.
const pausedReason = "it is paused: only a running container migrates (resume it, then run migrate --all again)"

// paused says whether container id is paused now.
func (o *MigrateOpts) paused(id string) bool {
	h, err := container.Inspect(o.Root, id)
	return err == nil && h.Status() == container.Paused
}

// goneAtProbe says why container id, whose probe failed with err, is to
// be skipped: it was deleted or stopped meanwhile ("" when it still
// runs, or is paused). A probe touches no container, so its state now
// tells, whatever the probe's error (a pid gone while the offer was
// read).
func (o *MigrateOpts) goneAtProbe(id string, err error) string {
	if err == nil || errors.Is(err, container.ErrWrongState) && o.paused(id) {
		return ""
	}
	if why := goneReason(err, "migration"); why != "" {
		return why
	}
	h, ierr := container.Inspect(o.Root, id)
	if ierr == nil && (h.Status() == container.Running || h.Status() == container.Paused) {
		return ""
	}
	if ierr == nil {
		ierr = container.ErrWrongState
	}
	return goneReason(ierr, "migration")
}

// late adds to the evacuation, kept, the containers that run (or are
// paused) here now but were created after the root was listed: they were
// not moved, and an evacuation that passed over them would pass for
// complete.
func (o *MigrateOpts) late(ev *Evacuation) {
	listed := map[string]bool{}
	for _, m := range ev.Moves {
		listed[m.ID] = true
	}
	for _, h := range unlisted(o.Root, listed) {
		ev.Moves = append(ev.Moves, Move{ID: h.ID(), Status: StatusKept, Error: "it was created while migrate --all ran, after the root was listed: not moved"})
	}
}

// moveAll migrates the containers todo indexes, starting none once stop
// has ended; abort's end rolls back those under way (a dump stopped at
// CRIU's next safe point), but for those whose commit has begun, which
// the target may run from then on: they finish, moved (Summary.LetFinish
// says why) or in doubt (the target did not confirm the commit).
func (o *MigrateOpts) moveAll(stop, abort context.Context, ev *Evacuation, todo []int) {
	t := &tally{total: len(todo), progress: o.Progress}
	var turn func(context.Context) (func(), error)
	if o.Frozen > 0 {
		turn = turns(o.Frozen)
	}
	each(stop, todo, o.Parallel, func(i int) {
		m := &ev.Moves[i]
		t.start(m.ID)
		start := time.Now()
		mo := o.options(m.ID)
		mo.Turn = turn
		sum, err := migrate.Migrate(abort, mo)
		if err != nil && abort.Err() != nil && !errors.Is(err, migrate.ErrInDoubt) {
			err = fmt.Errorf("aborted (a second signal) and rolled back: %w", err)
		}
		if errors.Is(err, container.ErrWrongState) && o.paused(m.ID) {
			m.Status, m.Error = StatusKept, pausedReason
			t.end(m.ID, errors.New(pausedReason), time.Since(start))
			return
		}
		if why := goneReason(err, "migration"); why != "" {
			m.Status, m.Error = StatusSkipped, why
			t.skip(m.ID, errors.New(why), time.Since(start))
			return
		}
		if errors.Is(err, migrate.ErrInDoubt) {
			m.Status, m.Error = StatusInDoubt, err.Error()
		} else if err != nil {
			m.Status, m.Error = StatusKept, err.Error()
		} else {
			m.Status, m.Summary = StatusMoved, sum
		}
		t.end(m.ID, err, time.Since(start))
	})
	o.notStarted(ev, todo, StatusWouldMove)
}

// turns hands out n turns to be down (migrate.Options.Turn), to the
// migrations in the order they asked.
func turns(n int) func(context.Context) (func(), error) {
	sem := make(chan struct{}, max(1, n))
	return func(ctx context.Context) (func(), error) {
		if !acquire(ctx, sem) {
			return nil, context.Cause(ctx)
		}
		return func() { <-sem }, nil
	}
}
