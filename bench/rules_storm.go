package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lkc-containers/lkc/internal/procconn"
)

// Probe record kinds (bench/rulesprobe/probe.c).
const (
	probePlaced   = 1
	probeUnplaced = 2
	childPlaced   = 3
	childEscaped  = 4
	probeDeadline = 500 * time.Millisecond
	childDeadline = 600 * time.Millisecond
	readyWithin   = 10 * time.Second
)

// rulesEngine is one engine under test, started before a storm and
// stopped after it, so that the other never pays for its events.
type rulesEngine interface {
	start() error
	pids() ([]int, error) // whose CPU is the engine's
	stop()
}

// stormTally is what the storms of one variant added up to, for its notes.
type stormTally struct {
	execs, unplaced, children, escaped, unmatched int
	raced                                         int // escapees whose parent was placed
	seconds                                       float64
	cpu                                           time.Duration // the engine's, over every storm
}

// String also gives the engine's CPU per probe it placed: an engine that
// loses events (a socket buffer overrun) does less work, so its CPU per
// second alone flatters it.
func (t *stormTally) String() string {
	perPlaced := time.Duration(0)
	if placed := t.execs - t.unplaced; placed > 0 {
		perPlaced = t.cpu / time.Duration(placed)
	}
	return fmt.Sprintf("%d execs in %.1f s (%.0f/s); %d probes not in the group %v after exec; escapees: %d of %d children not in the group %v after the fork, %d of them with their parent in it (the race); %d records without an exec event; engine CPU per probe placed (with its child) %v",
		t.execs, t.seconds, float64(t.execs)/max(t.seconds, 1e-9), t.unplaced, probeDeadline, t.escaped, t.children, childDeadline, t.raced, t.unmatched, perPlaced.Round(time.Microsecond))
}

// storm runs one window: the engine started and ready, rulesRate execs
// per second for rulesWindow; each probe's latency runs from the kernel's
// EXEC event of its pid (the bench's own connector listener) to its last
// cgroup attach (attachTracer; a probe never moved counts as
// probeDeadline), and the engine's
// CPU from the first exec to the last probe's exit, per second of storm.
func (l *rulesLab) storm(ctx context.Context, eng rulesEngine, tally *stormTally) (Sample, error) {
	if err := eng.start(); err != nil {
		return Sample{}, err
	}
	defer eng.stop()
	if err := l.waitReady(ctx); err != nil {
		return Sample{}, err
	}
	tr, err := startAttachTracer(l.env.IDPrefix+"-rules", filepath.Base(l.probe), len(l.hier))
	if err != nil {
		return Sample{}, err
	}
	conn, err := procconn.Open(procconn.Exec)
	if err != nil {
		tr.stop()
		return Sample{}, err
	}
	execs := listenExecs(conn)
	pids, err := eng.pids()
	if err != nil {
		return Sample{}, err
	}
	cpu0, _, err := serverUsage(pids)
	if err != nil {
		return Sample{}, err
	}
	recs, seconds, err := l.generate(ctx, rulesRate*int(rulesWindow/time.Second))
	cpu1, _, err2 := serverUsage(pids)
	events := execs()
	placed := tr.stop()
	if err == nil {
		err = err2
	}
	if err != nil {
		return Sample{}, err
	}
	s := Sample{CPU: time.Duration(float64(cpu1-cpu0) / seconds)}
	tally.seconds += seconds
	tally.cpu += cpu1 - cpu0
	parentPlaced := map[int32]bool{}
	for _, r := range recs {
		parentPlaced[r.pid] = r.kind == probePlaced
	}
	for _, r := range recs {
		switch r.kind {
		case probePlaced, probeUnplaced:
			tally.execs++
			if r.kind == probeUnplaced {
				tally.unplaced++
			}
			t, ok := events[int(r.pid)]
			in, moved := placed[int(r.pid)]
			switch {
			case !ok:
				tally.unmatched++
			case moved:
				s.Walls = append(s.Walls, time.Duration(int64(in)-int64(t)))
			default: // never moved: at least as late as the probe's look
				s.Walls = append(s.Walls, probeDeadline)
			}
		case childPlaced, childEscaped:
			tally.children++
			if r.kind == childEscaped {
				tally.escaped++
				if parentPlaced[int32(r.t)] { // a child's t is its parent's pid
					tally.raced++
				}
			}
		}
	}
	return s, nil
}

// listenExecs collects the kernel's EXEC events (pid -> CLOCK_MONOTONIC
// ns) until the returned function is called, which closes conn.
func listenExecs(conn *procconn.Conn) func() map[int]uint64 {
	got := map[int]uint64{}
	var mu sync.Mutex
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			evs, _ := conn.Read(procconn.Exec)
			mu.Lock()
			for _, ev := range evs {
				got[ev.Tgid] = ev.Time
			}
			mu.Unlock()
		}
	}()
	return func() map[int]uint64 {
		close(stop)
		<-done
		conn.Close()
		return got
	}
}

type probeRecord struct {
	kind, pid int32
	t         int64
}

// generate runs the generator role for n execs in the scope and returns
// every probe's record and how long the execs took.
func (l *rulesLab) generate(ctx context.Context, n int) ([]probeRecord, float64, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	cmd := exec.CommandContext(ctx, l.env.Self, "-probe", l.probe, "-target", l.target,
		"-hierarchies", strconv.Itoa(len(l.hier)), "-join", strings.Join(l.dirs(l.scope), ","),
		"-rate", strconv.Itoa(rulesRate), "-count", strconv.Itoa(n))
	cmd.Env = append(os.Environ(), roleEnv+"="+roleRulesGen)
	cmd.ExtraFiles = []*os.File{w}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Start()
	w.Close()
	if err != nil {
		return nil, 0, err
	}
	recs := readRecords(r)
	if err := cmd.Wait(); err != nil {
		return nil, 0, fmt.Errorf("generator: %w: %s", err, strings.TrimSpace(out.String()))
	}
	var execs int
	var seconds float64
	if _, err := fmt.Sscanf(out.String(), "execs %d seconds %f", &execs, &seconds); err != nil {
		return nil, 0, fmt.Errorf("generator said %q", out.String())
	}
	return recs, seconds, nil
}

// readRecords reads 16-byte records until every writer is gone.
func readRecords(r io.Reader) []probeRecord {
	var out []probeRecord
	b := make([]byte, 16)
	for {
		if _, err := io.ReadFull(r, b); err != nil {
			return out
		}
		out = append(out, probeRecord{
			kind: int32(binary.NativeEndian.Uint32(b)),
			pid:  int32(binary.NativeEndian.Uint32(b[4:])),
			t:    int64(binary.NativeEndian.Uint64(b[8:])),
		})
	}
}

// waitReady runs single probes until one lands in the group: the engine
// follows events and has scanned.
func (l *rulesLab) waitReady(ctx context.Context) error {
	end := time.Now().Add(readyWithin)
	for time.Now().Before(end) {
		recs, _, err := l.generate(ctx, 1)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.kind == probePlaced {
				return nil
			}
		}
	}
	return fmt.Errorf("the engine placed no probe within %v", readyWithin)
}

func readPids(file string) []int {
	data, _ := os.ReadFile(file)
	var out []int
	for _, f := range strings.Fields(string(data)) {
		if p, err := strconv.Atoi(f); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// lkcEngine is an lkc daemon with the lab's configuration.
type lkcEngine struct {
	lab *rulesLab
	bin string
	run bool
}

func (d *lkcEngine) start() error {
	if out, err := d.lab.lkc(d.bin, "daemon", "--detach").CombinedOutput(); err != nil {
		return fmt.Errorf("lkc daemon --detach: %w: %s", err, strings.TrimSpace(string(out)))
	}
	d.run = true
	return nil
}

func (d *lkcEngine) pids() ([]int, error) {
	out, err := d.lab.lkc(d.bin, "daemon", "status", "--json").Output()
	if err != nil {
		return nil, fmt.Errorf("lkc daemon status: %w", err)
	}
	var st struct{ HolderPid, WorkerPid int }
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("lkc daemon status: %w", err)
	}
	return []int{st.WorkerPid, st.HolderPid}, nil
}

func (d *lkcEngine) stop() {
	if !d.run {
		return
	}
	d.run = false
	if out, err := d.lab.lkc(d.bin, "daemon", "stop").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: rules: lkc daemon stop: %v: %s\n", err, out)
	}
}

// cgrulesEngine is libcgroup's cgrulesengd in the foreground.
type cgrulesEngine struct {
	lab  *rulesLab
	cmd  *exec.Cmd
	made []string // the files and directory it made in /etc
}

// prepare makes the configuration files cgrulesengd needs, refusing when
// the host has its own.
func (d *cgrulesEngine) prepare() error {
	if _, err := exec.LookPath("cgrulesengd"); err != nil {
		return fmt.Errorf("cgrulesengd is not installed (Debian's cgroup-tools)")
	}
	for _, p := range []string{cgrulesConf, cgconfigConf, cgconfigDir} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s exists: the host's, which the benchmark does not replace", p)
		}
	}
	// Its socket, which it leaves when stopped, goes with the files.
	if _, err := os.Lstat(cgredSocket); err != nil {
		d.made = append(d.made, cgredSocket)
	}
	if err := os.Mkdir(cgconfigDir, 0o755); err != nil {
		return err
	}
	d.made = append(d.made, cgconfigDir)
	if err := os.WriteFile(cgconfigConf, nil, 0o644); err != nil {
		d.remove()
		return err
	}
	d.made = append(d.made, cgconfigConf)
	return nil
}

// writeRule writes the one rule, once the lab knows the group's
// hierarchies.
func (d *cgrulesEngine) writeRule() error {
	rule := fmt.Sprintf("*:%s %s %s\n", d.lab.probe, strings.Join(d.lab.hier, ","), d.lab.target)
	d.made = append(d.made, cgrulesConf)
	return os.WriteFile(cgrulesConf, []byte(rule), 0o644)
}

func (d *cgrulesEngine) remove() {
	for i := len(d.made) - 1; i >= 0; i-- {
		os.Remove(d.made[i])
	}
	d.made = nil
}

func (d *cgrulesEngine) version() string {
	out, _ := exec.Command("dpkg-query", "-W", "-f", "${Version}", "cgroup-tools").Output()
	return "cgroup-tools " + string(out)
}

func (d *cgrulesEngine) start() error {
	d.cmd = exec.Command("cgrulesengd", "-n", "-q", "-f", d.lab.dir+"/cgrulesengd.log")
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return d.cmd.Start()
}

func (d *cgrulesEngine) pids() ([]int, error) { return []int{d.cmd.Process.Pid}, nil }

func (d *cgrulesEngine) stop() {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
	d.cmd = nil
}
