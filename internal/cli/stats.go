package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/stats"
)

// cmdStats prints containers' usage as `docker stats` does: every
// container (or the ones named) each second until interrupted, or one
// sample with --no-stream; --json prints one JSON object per container
// per sample. CPU % needs two reads, so the first output comes after one
// interval.
func cmdStats(g *globals, args []string) error {
	fs := newFlags("stats")
	asJSON := fs.Bool("json", false, "print one JSON object per container per sample")
	noStream := fs.Bool("no-stream", false, "print one sample and exit")
	interval := fs.Duration("interval", time.Second, "time between samples")
	ids, err := parse(fs, args, nargs{min: 0, max: -1}, "lkc stats [--json] [--no-stream] [--interval 1s] [ID...]")
	if err != nil {
		return err
	}
	if err := checkInterval(*interval); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	r := stats.NewReader(g.root)
	r.Warn = g.warn
	if _, err := r.Read(ids...); err != nil {
		return err
	}
	tty := isTerminal(os.Stdout)
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		samples, err := r.Read(ids...)
		if err != nil {
			return err
		}
		if err := printStats(samples, *asJSON, tty && !*noStream); err != nil {
			return err
		}
		if *noStream {
			return nil
		}
	}
}

// printStats writes one sample of every container: JSON lines, or a
// table, redrawn in place on a terminal (as docker stats does).
func printStats(samples []stats.Sample, asJSON, redraw bool) error {
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		for i := range samples {
			if err := enc.Encode(&samples[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if redraw {
		os.Stdout.WriteString(escHome + escClear)
	}
	return writeStatsTable(os.Stdout, samples, -1)
}
