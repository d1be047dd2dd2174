package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/lkc-containers/lkc/internal/evacuate"
	"github.com/lkc-containers/lkc/internal/migrate"
)

// hasAll says whether a command's arguments ask for its --all form
// (checkpoint, restore and migrate of every container, docs/evacuate.md).
func hasAll(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--all" || a == "-all" || a == "--all=true" {
			return true
		}
	}
	return false
}

// defaultParallel bounds the dumps, restores and migrations at a time:
// the CPUs lkc may run on. The work is mostly CPU bound (CRIU on both
// sides, the sealing of a migration's pages): more at a time than CPUs
// makes no whole faster and keeps each container frozen longer, waiting
// for its share (docs/journal/2026-12-07-evacuation-turns.md).
func defaultParallel() int { return runtime.NumCPU() }

func cmdCheckpointAll(g *globals, args []string) error {
	var o evacuate.CheckpointOpts
	var all, asJSON bool
	fs := newFlags("checkpoint")
	fs.BoolVar(&all, "all", false, "checkpoint every running container of the root")
	fs.StringVar(&o.ImageDir, "image-dir", "", "directory for the images, one sub-directory per container, and the manifest")
	fs.IntVar(&o.Parallel, "parallel", defaultParallel(), "dumps at a time")
	fs.BoolVar(&o.Stop, "stop", false, "kill and delete the containers that could not be dumped")
	fs.BoolVar(&o.SaveRootfs, "save-rootfs", false, "save every rootfs with the images, not only those on tmpfs or ramfs")
	fs.BoolVar(&o.Dump.LeaveRunning, "leave-running", false, "leave the dumped containers running")
	fs.BoolVar(&o.Dump.TCPEstablished, "tcp-established", false, "checkpoint established TCP connections")
	fs.BoolVar(&o.Dump.TCPSkipInFlight, "tcp-skip-in-flight", false, "skip in-flight TCP connections")
	fs.BoolVar(&o.Dump.ExtUnixSk, "ext-unix-sk", false, "allow external unix sockets")
	fs.BoolVar(&o.Dump.FileLocks, "file-locks", false, "handle file locks")
	fs.BoolVar(&o.Dump.LinkRemap, "link-remap", false, "allow one to link unlinked files back when possible")
	fs.BoolVar(&asJSON, "json", false, "print the manifest (JSON) instead of a table")
	const use = "lkc checkpoint --all --image-dir DIR [--parallel N] [--stop] [--leave-running] [--tcp-established] [--json]"
	if err := parseAll(fs, args, use, &o.ImageDir); err != nil {
		return err
	}
	if err := checkParallel(o.Parallel); err != nil {
		return err
	}
	var err error
	o.Root, o.Warn = g.root, g.warn
	o.Dump.CRIU, o.Dump.Verbose = g.criu, g.debug
	p := newAllProgress("checkpoint", "dumped", asJSON)
	o.Progress = p.event
	stop, abort, release := interruptible()
	defer release()
	start := time.Now()
	m, err := evacuate.CheckpointAll(stop, abort, o)
	p.done()
	if m == nil {
		return err
	}
	if asJSON {
		json.NewEncoder(os.Stdout).Encode(m)
	} else {
		printManifest(os.Stdout, m, o.ImageDir, time.Since(start))
	}
	if err != nil {
		return err
	}
	return notAll("dumped", len(m.Containers), func(i int) (string, string) {
		e := m.Containers[i]
		if e.Status != evacuate.StatusFailed {
			return "", ""
		}
		return e.ID, e.Error
	})
}

// notAll fails, in one line, when any of n containers failed (the
// first's reason named); failed(i) returns the id and reason of a failed
// one, "" otherwise.
func notAll(verb string, n int, failed func(i int) (string, string)) error {
	count, first := 0, ""
	for i := 0; i < n; i++ {
		if id, why := failed(i); id != "" {
			if count == 0 {
				first = id + ": " + why
			}
			count++
		}
	}
	if count == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d containers not %s (%s)", count, n, verb, first)
}

func printManifest(w io.Writer, m *evacuate.Manifest, dir string, took time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tDUMP MS\tROOTFS SAVED\tREASON")
	count := map[string]int{}
	for _, e := range m.Containers {
		count[e.Status]++
		why := e.Error
		if e.Stopped {
			why += " (stopped: --stop)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%v\t%s\n", e.ID, e.Status, e.DumpMS, e.RootfsSaved, why)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d dumped, %d failed, %d skipped in %.1f ms; manifest %s\n", count[evacuate.StatusDumped],
		count[evacuate.StatusFailed], count[evacuate.StatusSkipped], float64(took.Microseconds())/1000, filepath.Join(dir, evacuate.ManifestFile))
}

func cmdRestoreAll(g *globals, args []string) error {
	var o evacuate.RestoreOpts
	var all, asJSON bool
	fs := newFlags("restore")
	fs.BoolVar(&all, "all", false, "restore every container of the image dir's manifest")
	fs.StringVar(&o.ImageDir, "image-dir", "", "directory written by checkpoint --all")
	fs.IntVar(&o.Parallel, "parallel", defaultParallel(), "restores at a time")
	fs.StringVar(&o.ConsoleDir, "console-dir", "", "directory of console sockets, one named after each container with a terminal")
	fs.BoolVar(&o.Restore.TCPEstablished, "tcp-established", false, "restore established TCP connections (implied when the dump took them)")
	fs.BoolVar(&o.Restore.ExtUnixSk, "ext-unix-sk", false, "allow external unix sockets")
	fs.BoolVar(&o.Restore.FileLocks, "file-locks", false, "handle file locks")
	fs.BoolVar(&asJSON, "json", false, "print the outcome as JSON")
	const use = "lkc restore --all --image-dir DIR [--parallel N] [--console-dir DIR] [--tcp-established] [--json]"
	if err := parseAll(fs, args, use, &o.ImageDir); err != nil {
		return err
	}
	if err := checkParallel(o.Parallel); err != nil {
		return err
	}
	var err error
	if o.ConsoleDir, err = absPath(o.ConsoleDir); err != nil {
		return err
	}
	o.Adopt = adoptConfig
	if g.rootSet {
		o.Root = g.root
	}
	o.Restore.CRIU, o.Restore.Warn, o.Restore.Verbose = g.criu, g.warn, g.debug
	p := newAllProgress("restore", "restored", asJSON)
	o.Progress = p.event
	stop, abort, release := interruptible()
	defer release()
	defer context.AfterFunc(abort, p.stillRunning)()
	start := time.Now()
	res, err := evacuate.RestoreAll(stop, o)
	p.done()
	if err != nil {
		return err
	}
	if asJSON {
		json.NewEncoder(os.Stdout).Encode(res)
	} else {
		tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tMS\tREASON")
		count := map[string]int{}
		for _, r := range res {
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\n", r.ID, r.Status, r.MS, r.Error)
			count[r.Status]++
		}
		tw.Flush()
		restored, skipped := count[evacuate.StatusRestored], count[evacuate.StatusSkipped]
		fmt.Printf("%d restored, %d not restored, %d skipped in %.1f ms\n", restored, len(res)-restored-skipped, skipped,
			float64(time.Since(start).Microseconds())/1000)
	}
	return notAll("restored", len(res), func(i int) (string, string) {
		if res[i].Status == evacuate.StatusRestored || res[i].Status == evacuate.StatusSkipped {
			return "", ""
		}
		return res[i].ID, res[i].Error
	})
}

func cmdMigrateAll(g *globals, args []string) error {
	var o evacuate.MigrateOpts
	var all, asJSON bool
	var tokenFile string
	fs := newFlags("migrate")
	fs.BoolVar(&all, "all", false, "move every running container of the root")
	fs.StringVar(&tokenFile, "token-file", "", "file holding the shared secret (mode 0600)")
	fs.IntVar(&o.Parallel, "parallel", defaultParallel(), "migrations at a time")
	fs.IntVar(&o.Frozen, "frozen", 0, "containers down (frozen, not yet running on the target) at a time, of the migrations under way (default: --parallel)")
	fs.BoolVar(&o.DryRun, "dry-run", false, "say which containers would move and which would fail, and why; move nothing")
	fs.BoolVar(&o.Migrate.SharedStorage, "shared-storage", false, "the target sees the rootfs at the same paths: do not send them")
	fs.StringVar(&o.Migrate.Mode, "mode", "", "precopy, postcopy or stopcopy (default: as lkc migrate)")
	fs.BoolVar(&o.Migrate.TCPEstablished, "tcp-established", false, "move established TCP connections")
	fs.DurationVar(&o.Migrate.Timeout, "timeout", 60*time.Second, "per network exchange")
	fs.BoolVar(&asJSON, "json", false, "print the outcome as JSON")
	const use = "lkc migrate --all --token-file PATH [--parallel N] [--frozen N] [--dry-run] [--shared-storage] [--mode M] [--json] <host:port>"
	rest, err := parse(fs, args, exactly(1), use)
	if err != nil {
		return err
	}
	if tokenFile == "" {
		return fmt.Errorf("--token-file is required (usage: %s)", use)
	}
	if err := checkParallel(o.Parallel); err != nil {
		return err
	}
	frozenSet := false
	fs.Visit(func(f *flag.Flag) { frozenSet = frozenSet || f.Name == "frozen" })
	if frozenSet && o.Frozen < 1 {
		return fmt.Errorf("--frozen %d: want at least 1", o.Frozen)
	}
	if err := checkTimeout(o.Migrate.Timeout); err != nil {
		return err
	}
	switch o.Migrate.Mode {
	case "", migrate.ModePrecopy, migrate.ModePostcopy, migrate.ModeStopcopy:
	default:
		// Refused here, not only by each migration: with no container to
		// move, none would say so.
		return fmt.Errorf("--mode %q: use precopy, postcopy or stopcopy", o.Migrate.Mode)
	}
	if o.Migrate.Token, err = migrate.ReadToken(tokenFile); err != nil {
		return err
	}
	o.Root, o.Migrate.Target, o.Migrate.CRIU = g.root, rest[0], g.criu
	o.Migrate.Warn, o.Migrate.Verbose = g.warn, g.debug
	p := newAllProgress("migrate", "moved", asJSON)
	o.Progress = p.event
	stop, abort, release := interruptible()
	defer release()
	served := map[string]string{}
	if ids, err := os.ReadDir(o.Root); err == nil {
		for _, d := range ids {
			served[d.Name()] = servedBy(o.Root, d.Name())
		}
	}
	ev, err := evacuate.MigrateAll(stop, abort, o)
	p.done()
	if err != nil {
		return err
	}
	for _, m := range ev.Moves {
		if m.Status == evacuate.StatusMoved && served[m.ID] != "" {
			releaseFrom(served[m.ID], o.Root, m.ID, 0)
		}
	}
	if asJSON {
		json.NewEncoder(os.Stdout).Encode(ev)
	} else {
		printEvacuation(os.Stdout, ev)
	}
	verb := "moved"
	if o.DryRun {
		verb = "movable"
	}
	return notAll(verb, len(ev.Moves), func(i int) (string, string) {
		m := ev.Moves[i]
		if m.Status == evacuate.StatusKept || m.Status == evacuate.StatusWouldFail || m.Status == evacuate.StatusInDoubt {
			return m.ID, m.Error
		}
		return "", ""
	})
}

func printEvacuation(w io.Writer, ev *evacuate.Evacuation) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tDOWNTIME MS\tTOTAL MS\tMODE\tREASON")
	worst := 0.0
	for _, m := range ev.Moves {
		down, total, mode, why := "-", "-", "-", m.Error
		if s := m.Summary; s != nil {
			down, total, mode = fmt.Sprintf("%.1f", s.DowntimeMS), fmt.Sprintf("%.1f", s.TotalMS), s.Mode
			worst = max(worst, s.DowntimeMS)
			if why == "" {
				why = s.LetFinish
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.Status, down, total, mode, why)
	}
	tw.Flush()
	fmt.Fprintf(w, "total %.1f ms, worst downtime %.1f ms\n", ev.TotalMS, worst)
}

// allProgress shows an operation on many containers: on a terminal
// (stderr) one line rewritten in place with what is in flight, elsewhere
// a plain line on stdout as each container ends (none with --json, whose
// stdout is the JSON).
type allProgress struct {
	op, verb string
	tty      bool
	quiet    bool
	mu       sync.Mutex
	running  map[string]bool
}

func newAllProgress(op, verb string, asJSON bool) *allProgress {
	tty := stderrIsTerminal()
	return &allProgress{op: op, verb: verb, tty: tty, quiet: asJSON && !tty, running: map[string]bool{}}
}

func (p *allProgress) event(ev evacuate.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ev.Started {
		p.running[ev.ID] = true
	} else {
		delete(p.running, ev.ID)
	}
	if p.quiet {
		return
	}
	if !p.tty {
		if !ev.Started {
			fmt.Println(p.line(ev))
		}
		return
	}
	var ids []string
	for id := range p.running {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	line := fmt.Sprintf("%s --all: %d/%d done", p.op, ev.Done, ev.Total)
	if len(ids) > 0 {
		line += ", at " + strings.Join(ids, " ")
	}
	if !ev.Started {
		// A finished container's outcome stays on the screen.
		fmt.Fprintf(os.Stderr, "\r\x1b[K%s\n", p.line(ev))
	}
	fmt.Fprintf(os.Stderr, "\r\x1b[K%s", line)
}

func (p *allProgress) line(ev evacuate.Event) string {
	if ev.Skipped {
		return fmt.Sprintf("%s %s: skipped (%d/%d): %v", p.op, ev.ID, ev.Done, ev.Total, ev.Err)
	}
	if ev.Err != nil {
		return fmt.Sprintf("%s %s: failed after %.1f ms (%d/%d): %v", p.op, ev.ID, ev.MS, ev.Done, ev.Total, ev.Err)
	}
	return fmt.Sprintf("%s %s: %s in %.1f ms (%d/%d)", p.op, ev.ID, p.verb, ev.MS, ev.Done, ev.Total)
}

// stillRunning says, on stderr, which containers' operations are under
// way: those restore --all waits for after a second signal, as a CRIU
// restore has no point where it could stop without leaving its container
// half made.
func (p *allProgress) stillRunning() {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]string, 0, len(p.running))
	for id := range p.running {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	under := "none"
	if len(ids) > 0 {
		under = strings.Join(ids, " ")
	}
	if p.tty && !p.quiet {
		fmt.Fprint(os.Stderr, "\r\x1b[K")
	}
	fmt.Fprintf(os.Stderr, "lkc: %s --all: a second signal: waiting for the %ss under way, which cannot stop half way (a third signal ends lkc, leaving them half made): %s\n", p.op, p.op, under)
}

// done ends the terminal's progress line.
func (p *allProgress) done() {
	if p.tty && !p.quiet {
		fmt.Fprint(os.Stderr, "\r\x1b[K")
	}
}

// checkParallel refuses a --parallel below 1, which would otherwise be
// read as 1 without a word, as serve refuses such a --sessions.
func checkParallel(n int) error {
	if n < 1 {
		return fmt.Errorf("--parallel %d: want at least 1", n)
	}
	return nil
}

// parseAll parses the flags of an --all command, which takes no argument
// and needs --image-dir, made absolute in dir.
func parseAll(fs *flag.FlagSet, args []string, use string, dir *string) error {
	if _, err := parse(fs, args, exactly(0), use); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("--image-dir is required (usage: %s)", use)
	}
	abs, err := filepath.Abs(*dir)
	*dir = abs
	return err
}
