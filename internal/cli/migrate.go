package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/migrate"
)

func cmdServe(g *globals, args []string) error {
	var listen, tokenFile, bundles, cgParent string
	var timeout time.Duration
	fs := newFlags("serve")
	fs.StringVar(&listen, "listen", "", "address to listen on (host:port)")
	fs.StringVar(&tokenFile, "token-file", "", "file holding the shared secret (mode 0600)")
	fs.StringVar(&bundles, "bundle-dir", "/var/lib/lkc/bundles", "where migrated containers' bundles are kept")
	fs.StringVar(&cgParent, "cgroup-parent", "", "put arriving containers' cgroups at DIR/<id>, from the hierarchy root if DIR is absolute (default: the path they had)")
	fs.DurationVar(&timeout, "timeout", 60*time.Second, "per network exchange")
	var sessions int
	fs.IntVar(&sessions, "sessions", defaultParallel(), "migrations received at a time (migrate --all sends several)")
	const use = "lkc serve --listen ADDR --token-file PATH [--bundle-dir DIR] [--sessions N]"
	if _, err := parse(fs, args, exactly(0), use); err != nil {
		return err
	}
	if listen == "" || tokenFile == "" {
		return fmt.Errorf("--listen and --token-file are required (usage: %s)", use)
	}
	if sessions < 1 {
		return fmt.Errorf("--sessions %d: want at least 1", sessions)
	}
	if err := checkTimeout(timeout); err != nil {
		return err
	}
	token, err := migrate.ReadToken(tokenFile)
	if err != nil {
		return err
	}
	// CRIU resolves the image paths from its own working directory.
	if bundles, err = filepath.Abs(bundles); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", listen, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	logLine := func(msg string) {
		fmt.Fprintf(os.Stderr, "%s lkc serve: %s\n", time.Now().Format(time.RFC3339), msg)
		g.logf("info", "%s", msg)
	}
	return migrate.Serve(ctx, ln, migrate.ServeOptions{
		Root: g.root, BundleDir: bundles, Token: token, CRIU: g.criu, CgroupParent: cgParent,
		Timeout: timeout, Sessions: sessions, Log: logLine, Warn: g.warn, Verbose: g.debug, Adopt: adoptConfig,
	})
}

func cmdMigrate(g *globals, args []string) error {
	if hasAll(args) {
		return cmdMigrateAll(g, args)
	}
	var o migrate.Options
	var tokenFile string
	var asJSON, progress bool
	fs := newFlags("migrate")
	fs.StringVar(&tokenFile, "token-file", "", "file holding the shared secret (mode 0600)")
	fs.BoolVar(&o.SharedStorage, "shared-storage", false, "the target sees the rootfs at the same path: do not send it")
	var postcopy bool
	fs.BoolVar(&postcopy, "postcopy", false, "post-copy memory even when pre-copy would work (= --mode postcopy)")
	fs.StringVar(&o.Mode, "mode", "", "precopy, postcopy or stopcopy (default: precopy with dirty tracking, else postcopy)")
	fs.BoolVar(&o.TCPEstablished, "tcp-established", false, "move established TCP connections")
	fs.StringVar(&o.WorkDir, "work-dir", "", "where the source's images go (default: a temporary directory)")
	fs.IntVar(&o.MaxRounds, "max-rounds", 5, "pre-copy rounds at most")
	fs.Int64Var(&o.ConvergeBytes, "converge-bytes", 8<<20, "pre-copy stops once a round sends fewer bytes")
	fs.Float64Var(&o.ConvergeRatio, "converge-ratio", 0.8, "pre-copy stops once a round is not below this share of the last")
	fs.Int64Var(&o.BandwidthLimit, "bwlimit", 0, "bytes per second for the rootfs and images (0: no limit)")
	fs.DurationVar(&o.Timeout, "timeout", 60*time.Second, "per network exchange")
	fs.BoolVar(&asJSON, "json", false, "print a JSON summary")
	fs.BoolVar(&progress, "progress", false, "print progress lines even when stderr is not a terminal")
	const use = "lkc migrate --token-file PATH [--shared-storage] [--postcopy] [--tcp-established] [--json] <container-id> <host:port>"
	rest, err := parse(fs, args, exactly(2), use)
	if err != nil {
		return err
	}
	if tokenFile == "" {
		return fmt.Errorf("--token-file is required (usage: %s)", use)
	}
	if err := checkMigrateFlags(&o); err != nil {
		return err
	}
	if postcopy {
		o.Mode = migrate.ModePostcopy
	}
	if o.Token, err = migrate.ReadToken(tokenFile); err != nil {
		return err
	}
	o.Root, o.ID, o.Target, o.CRIU, o.Warn, o.Verbose = g.root, rest[0], rest[1], g.criu, g.warn, g.debug
	var display *migrate.Display
	if progress || stderrIsTerminal() {
		display = progressDisplay(&o, !progress)
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	served := servedBy(o.Root, o.ID)
	sum, err := migrate.Migrate(ctx, o)
	if display != nil && stderrIsTerminal() {
		display.Done()
	}
	if err != nil {
		return err
	}
	if served != "" {
		// The container left this host: its daemon serves it no more.
		releaseFrom(served, o.Root, o.ID, 0)
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(sum)
	}
	return nil
}

// checkTimeout refuses a per-exchange timeout that no exchange could meet:
// a zero one would silently become migrate's default of 60 s.
func checkTimeout(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("--timeout %s: want more than 0", d)
	}
	return nil
}

// checkMigrateFlags refuses the pre-copy and rate settings a migration
// cannot follow. Zeros are refused too: migrate.Options reads a zero as
// its default, which is not what a user typing 0 asked for.
func checkMigrateFlags(o *migrate.Options) error {
	switch {
	case o.MaxRounds < 1:
		return fmt.Errorf("--max-rounds %d: want at least 1", o.MaxRounds)
	case o.ConvergeBytes < 1:
		return fmt.Errorf("--converge-bytes %d: want at least 1", o.ConvergeBytes)
	case !(o.ConvergeRatio > 0) || math.IsInf(o.ConvergeRatio, 1):
		return fmt.Errorf("--converge-ratio %v: want a number above 0", o.ConvergeRatio)
	case o.BandwidthLimit < 0:
		return fmt.Errorf("--bwlimit %d: want at least 0 (0: no limit)", o.BandwidthLimit)
	}
	return checkTimeout(o.Timeout)
}

// progressDisplay draws on a terminal in place, or with --progress
// elsewhere one line per phase change (what a script or a test reads).
func progressDisplay(o *migrate.Options, tty bool) *migrate.Display {
	d := &migrate.Display{W: os.Stderr}
	if tty {
		o.Progress = d.Update
		return d
	}
	last := ""
	o.Progress = func(p migrate.Progress) {
		if p.Phase != last || p.Round > 0 && p.Bytes == 0 {
			last = p.Phase
			fmt.Fprintf(os.Stderr, "phase %s round %d bytes %d at %.1f ms\n", p.Phase, p.Round, p.All, float64(p.Elapsed.Microseconds())/1000)
		}
	}
	return d
}

func stderrIsTerminal() bool {
	_, err := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS)
	return err == nil
}
