package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const tracefs = "/sys/kernel/tracing"

// ensureTracefs mounts tracefs on its place when nothing is mounted there
// (systemd mounts it at boot; a host without systemd may not), and says
// whether it did.
func ensureTracefs() (bool, error) {
	if _, err := os.Stat(filepath.Join(tracefs, "instances")); err == nil {
		return false, nil
	}
	if err := syscall.Mount("tracefs", tracefs, "tracefs", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return false, fmt.Errorf("mounting tracefs on %s: %w", tracefs, err)
	}
	return true, nil
}

// unmountTracefs undoes ensureTracefs' mount.
func unmountTracefs() {
	if err := syscall.Unmount(tracefs, 0); err != nil {
		fmt.Fprintf(os.Stderr, "bench: rules: unmounting %s: %v\n", tracefs, err)
	}
}

// attachTracer records when each probe process was attached to cgroups,
// from the kernel's cgroup:cgroup_attach_task trace event, in a tracing
// instance of its own (the global buffer is left alone) with the "mono"
// clock, the proc connector's. A move is one event per hierarchy; a
// process is in the group at its want-th event. The probes need not poll
// their cgroup, which on 2 cores would cost more than the engines.
type attachTracer struct {
	dir   string
	want  int
	pipe  *os.File
	done  chan struct{}
	mu    sync.Mutex
	count map[int]int
	at    map[int]uint64 // pid -> ns of its want-th attach
}

// startAttachTracer traces the attaches of tasks named comm.
func startAttachTracer(name, comm string, want int) (*attachTracer, error) {
	t := &attachTracer{dir: filepath.Join(tracefs, "instances", name), want: want,
		done: make(chan struct{}), count: map[int]int{}, at: map[int]uint64{}}
	if err := os.Mkdir(t.dir, 0o755); err != nil {
		return nil, fmt.Errorf("tracing instance: %w", err)
	}
	ev := filepath.Join(t.dir, "events/cgroup/cgroup_attach_task")
	for _, w := range []struct{ file, text string }{
		{filepath.Join(t.dir, "trace_clock"), "mono"},
		{filepath.Join(t.dir, "buffer_size_kb"), "8192"},
		{filepath.Join(ev, "filter"), fmt.Sprintf("comm == %q", comm)},
		{filepath.Join(ev, "enable"), "1"},
	} {
		if err := os.WriteFile(w.file, []byte(w.text), 0); err != nil {
			t.remove()
			return nil, fmt.Errorf("tracing: writing %s: %w", w.file, err)
		}
	}
	pipe, err := os.OpenFile(filepath.Join(t.dir, "trace_pipe"), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.remove()
		return nil, fmt.Errorf("tracing: %w", err)
	}
	t.pipe = pipe
	go t.read()
	return t, nil
}

func (t *attachTracer) read() {
	defer close(t.done)
	sc := bufio.NewScanner(t.pipe)
	for sc.Scan() {
		pid, ns, ok := parseAttach(sc.Text())
		if !ok {
			continue
		}
		t.mu.Lock()
		if t.count[pid]++; t.count[pid] == t.want {
			t.at[pid] = ns
		}
		t.mu.Unlock()
	}
}

// parseAttach reads "  TASK-PID [CPU] FLAGS  SECS.USECS: cgroup_attach_task: ... pid=N comm=..."
// into the attached pid and the time in ns.
func parseAttach(line string) (int, uint64, bool) {
	head, rest, ok := strings.Cut(line, ": cgroup_attach_task: ")
	if !ok {
		return 0, 0, false
	}
	f := strings.Fields(head)
	if len(f) == 0 {
		return 0, 0, false
	}
	secs, frac, _ := strings.Cut(f[len(f)-1], ".")
	s, err1 := strconv.ParseUint(secs, 10, 64)
	us, err2 := strconv.ParseUint(frac, 10, 64)
	_, after, ok := strings.Cut(rest, " pid=")
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, false
	}
	pidText, _, _ := strings.Cut(after, " ")
	pid, err := strconv.Atoi(pidText)
	if err != nil {
		return 0, 0, false
	}
	return pid, s*1e9 + us*1e3, true
}

// stop drains what the kernel still holds and returns pid -> the time it
// was in the group.
func (t *attachTracer) stop() map[int]uint64 {
	t.pipe.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	<-t.done
	t.pipe.Close()
	t.remove()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.at
}

// remove disables the event and removes the instance.
func (t *attachTracer) remove() {
	os.WriteFile(filepath.Join(t.dir, "events/cgroup/cgroup_attach_task/enable"), []byte("0"), 0)
	if err := syscall.Rmdir(t.dir); err != nil && !errors.Is(err, syscall.ENOENT) {
		fmt.Fprintf(os.Stderr, "bench: rules: removing %s: %v\n", t.dir, err)
	}
}
