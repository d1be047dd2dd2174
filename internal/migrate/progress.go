package migrate

import (
	"fmt"
	"io"
	"time"
)

// Phases of a migration, in order; Progress.Phase is one of them.
const (
	PhaseConnect  = "connect"
	PhaseRootfs   = "rootfs"
	PhasePrecopy  = "precopy"
	PhaseFreeze   = "freeze"
	PhaseImages   = "images"
	PhaseRestore  = "restore"
	PhasePostcopy = "postcopy"
	PhaseCommit   = "commit"
	PhaseDone     = "done"
)

// Modes of the memory transfer.
const (
	ModePrecopy  = "precopy"
	ModePostcopy = "postcopy"
	ModeStopcopy = "stopcopy" // freeze, dump everything, restore: no dirty tracking, no userfaultfd
)

// Progress is one report of a migration's advance, for a display.
type Progress struct {
	Phase   string
	Round   int   // pre-copy round, from 1
	Bytes   int64 // sent in this phase so far
	Total   int64 // expected in this phase; 0 when unknown
	All     int64 // sent since the start, every phase
	Elapsed time.Duration
}

// Summary is what a finished migration reports (`lkc migrate --json`).
type Summary struct {
	ID         string  `json:"id"`
	Target     string  `json:"target"`
	Mode       string  `json:"mode"`
	DowntimeMS float64 `json:"downtime_ms"` // source frozen until the target confirmed it resumed
	TotalMS    float64 `json:"total_ms"`
	// WaitMS is the part of TotalMS spent waiting for a turn to freeze
	// (Options.Turn), running here, its rootfs and memory copied.
	WaitMS    float64 `json:"wait_ms,omitempty"`
	Bytes     int64   `json:"bytes"` // control stream, rootfs, images and lazily fetched pages
	Rounds    int     `json:"rounds"`
	PageBytes int64   `json:"page_bytes"` // of Bytes, the pages fetched by post-copy
	// Fallback says why a post-copy lkc chose by itself gave way to
	// stop-and-copy ("" when it did not).
	Fallback string `json:"fallback,omitempty"`
	// LetFinish says why an abort (a signal to migrate, a second one to
	// migrate --all) that came while the migration ran did not stop it:
	// its commit had begun, and the target may run the container ("" when
	// none came then).
	LetFinish string `json:"let_finish,omitempty"`
}

// Display renders Progress reports on a terminal, one line rewritten in
// place: phase, round, bytes, rate.
type Display struct {
	W    io.Writer
	last time.Time
}

// Update draws p unless the last draw was under 100 ms ago (phase changes
// always draw).
func (d *Display) Update(p Progress) {
	now := time.Now()
	if now.Sub(d.last) < 100*time.Millisecond && p.Bytes != 0 && p.Bytes != p.Total {
		return
	}
	d.last = now
	line := fmt.Sprintf("%-8s", p.Phase)
	if p.Round > 0 {
		line += fmt.Sprintf(" round %d", p.Round)
	}
	line += " " + size(p.Bytes)
	if p.Total > 0 {
		line += " / " + size(p.Total)
	}
	if s := p.Elapsed.Seconds(); s > 0 {
		line += fmt.Sprintf("  total %s  %s/s  %.1fs", size(p.All), size(int64(float64(p.All)/s)), s)
	}
	fmt.Fprintf(d.W, "\r\033[K%s", line)
}

// Done ends the display's line.
func (d *Display) Done() { fmt.Fprintln(d.W) }

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
