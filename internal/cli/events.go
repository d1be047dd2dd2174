package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/container"
)

// cmdEvents prints runc's event stream: with --stats one stats event, else
// a stats event every --interval and an oom event on every OOM kill, one
// JSON object per line, until the container stops or lkc is interrupted.
func cmdEvents(g *globals, args []string) error {
	fs := newFlags("events")
	stats := fs.Bool("stats", false, "print one stats event and exit")
	interval := fs.Duration("interval", 5*time.Second, "time between stats events")
	rest, err := parse(fs, args, exactly(1), "lkc events [--stats] [--interval D] <container-id>")
	if err != nil {
		return err
	}
	if *interval <= 0 {
		// Checked with --stats too, as runc does.
		return fmt.Errorf("--interval %v: must be positive", *interval)
	}
	out := json.NewEncoder(os.Stdout)
	if *stats {
		ev, err := container.Stats(g.root, rest[0])
		if err != nil {
			return err
		}
		return out.Encode(ev)
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	return container.Events(ctx, g.root, rest[0], *interval, func(ev *container.Event) error {
		return out.Encode(ev)
	})
}
