package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/stats"
)

const topUsage = "lkc top [--once] [--json] [--sort id|state|cpu|mem|pids|block|net|oom|policy] [--interval 1s]"

// cmdTop shows every container of the root with its usage, refreshed each
// interval and sorted by a column: full-screen on a terminal (keys choose
// the column), or, for scripts, one table (--once) or one JSON array per
// refresh (--json; with --once just one).
func cmdTop(g *globals, args []string) error {
	fs := newFlags("top")
	once := fs.Bool("once", false, "print one table (or JSON array) and exit")
	asJSON := fs.Bool("json", false, "print a JSON array of samples per refresh")
	sortBy := fs.String("sort", "cpu", "column to sort by")
	interval := fs.Duration("interval", time.Second, "time between refreshes")
	if _, err := parse(fs, args, exactly(0), topUsage); err != nil {
		return err
	}
	order, err := parseStatsSort(*sortBy)
	if err != nil {
		return err
	}
	if err := checkInterval(*interval); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	defer stop()
	t := &topView{r: stats.NewReader(g.root), order: order, interval: *interval}
	t.r.Warn = g.warn
	if *once || *asJSON {
		return t.plain(ctx, *once, *asJSON)
	}
	if !isTerminal(os.Stdin) || !isTerminal(os.Stdout) {
		return errors.New("the live view needs a terminal: use --once or --json")
	}
	return t.live(ctx)
}

type topView struct {
	r        *stats.Reader
	order    statsSort
	interval time.Duration
	samples  []stats.Sample
}

// refresh reads every container, sorted.
func (t *topView) refresh() error {
	s, err := t.r.Read()
	if err != nil {
		return err
	}
	t.order.apply(s)
	t.samples = s
	return nil
}

// plain prints for scripts: the first output waits one interval, so CPU %
// compares two reads.
func (t *topView) plain(ctx context.Context, once, asJSON bool) error {
	if err := t.refresh(); err != nil {
		return err
	}
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := t.refresh(); err != nil {
			return err
		}
		var err error
		if asJSON {
			err = json.NewEncoder(os.Stdout).Encode(t.samples)
		} else {
			err = writeStatsTable(os.Stdout, t.samples, -1)
		}
		if err != nil || once {
			return err
		}
	}
}

// live runs the full-screen view until q, a signal or the end of stdin;
// the terminal is restored on every way out.
func (t *topView) live(ctx context.Context) error {
	scr, err := openScreen(os.Stdin, os.Stdout)
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	defer scr.restore()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, unix.SIGWINCH)
	defer signal.Stop(winch)
	keys := scr.keys()
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	if err := t.refresh(); err != nil {
		return err
	}
	for {
		t.draw(scr)
		select {
		case <-ctx.Done():
			return nil
		case <-winch:
		case k, ok := <-keys:
			if !ok || k == 'q' {
				return nil
			}
			t.key(k)
		case <-tick.C:
			if err := t.refresh(); err != nil {
				return err
			}
		}
	}
}

// key applies a key: a column's key sorts by it (again: reverses), r
// reverses.
func (t *topView) key(k byte) {
	if k == 'r' {
		t.order.reverse = !t.order.reverse
	}
	for i, c := range statsColumns {
		if c.key == k {
			if t.order.col == i {
				t.order.reverse = !t.order.reverse
			} else {
				t.order, _ = parseStatsSort(c.name)
			}
		}
	}
	t.order.apply(t.samples)
}

// draw writes the whole screen in one write, cut to the terminal's size.
func (t *topView) draw(scr *screen) {
	rows, cols := scr.size()
	var table bytes.Buffer
	writeStatsTable(&table, t.samples, t.order.col)
	var keys []string
	for _, c := range statsColumns {
		keys = append(keys, fmt.Sprintf("%c %s", c.key, c.name))
	}
	lines := append([]string{fmt.Sprintf("lkc top  %d containers  %s  sort: %s (%s, r reverse, q quit)",
		len(t.samples), time.Now().Format("15:04:05"), statsColumns[t.order.col].name, strings.Join(keys, ", "))},
		strings.Split(strings.TrimRight(table.String(), "\n"), "\n")...)
	if len(lines) > rows {
		lines = lines[:rows]
	}
	var b strings.Builder
	b.WriteString(escHome + escClear)
	for i, l := range lines {
		if len(l) > cols {
			l = l[:cols]
		}
		b.WriteString(l)
		if i < len(lines)-1 {
			b.WriteString("\r\n")
		}
	}
	scr.out.WriteString(b.String())
}
