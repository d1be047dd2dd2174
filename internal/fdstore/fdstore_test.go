package fdstore

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary takes the daemon's two roles, as lkc does: TestMain
// runs a holder or a test worker when started with HolderArgs or
// WorkerArgs (the holder starts its workers from /proc/self/exe).
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "daemon" {
		os.Exit(role(os.Args[2:]))
	}
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		// What the holder asks of a binary it upgrades to.
		fmt.Println("lkc version fdstore-test")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func role(args []string) int {
	dir := os.Getenv("FDSTORE_TEST_DIR")
	var resume string
	holderPid := 0
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--resume="); ok {
			resume = v
		}
		if v, ok := strings.CutPrefix(a, "--holder-pid="); ok {
			holderPid, _ = strconv.Atoi(v)
		}
	}
	var err error
	if args[0] == "--holder" {
		var st *Resume
		if resume != "" {
			st, _ = ParseResume(resume)
		}
		h := &Holder{Dir: dir, Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, "holder: "+f+"\n", a...) }}
		err = h.Run(st)
	} else {
		err = testWorker(dir, holderPid)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// testWorker is a worker whose only state is a pipe kept in the holder:
// the first worker makes it and writes a line into it; each later worker
// reads that line back through the fd it took, writes it in again and
// reports it on the test's fifo.
func testWorker(dir string, holderPid int) error {
	cl, err := NewClient(os.NewFile(3, "holder"))
	if err != nil {
		return err
	}
	taken, err := cl.Take()
	if err != nil {
		return err
	}
	got := "new"
	if r, w := taken["pipe-r"], taken["pipe-w"]; r != nil && w != nil {
		line, err := bufio.NewReader(r).ReadString('\n')
		if err != nil {
			return err
		}
		got = strings.TrimSpace(line)
		fmt.Fprintln(w, got)
	} else {
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "written-by-%d\n", os.Getpid())
		if err := cl.Put("pipe-r", r); err != nil {
			return err
		}
		if err := cl.Put("pipe-w", w); err != nil {
			return err
		}
	}
	// Registered before the worker reports: the test signals it then.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go upgradeOn(usr1, cl, dir)
	cl.WatchHolder(context.Background(), holderPid, func(format string, args ...any) {
		if strings.HasPrefix(format, "holder %d keeps") {
			reportLine(dir, fmt.Sprintf("%d deposited", os.Getpid()))
		}
	})
	if err := WritePid(dir, "worker.pid"); err != nil {
		return err
	}
	if err := cl.Ready(); err != nil {
		return err
	}
	if err := reportLine(dir, fmt.Sprintf("%d %s", os.Getpid(), got)); err != nil {
		return err
	}
	select {}
}

// upgradeOn makes the worker ask for an upgrade to its own binary on a
// signal, report the answer and exit (the old worker's drain).
func upgradeOn(sigs <-chan os.Signal, cl *Client, dir string) {
	<-sigs
	exe, err := os.Executable()
	if err == nil {
		var pid int
		pid, err = cl.Upgrade(exe)
		reportLine(dir, fmt.Sprintf("%d upgraded-to-%d", os.Getpid(), pid))
	}
	if err != nil {
		reportLine(dir, fmt.Sprintf("%d upgrade-failed %v", os.Getpid(), err))
	}
	os.Exit(0)
}

// reportLine writes one line on the test's fifo.
func reportLine(dir, line string) error {
	report, err := os.OpenFile(filepath.Join(dir, "report"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer report.Close()
	_, err = fmt.Fprintln(report, line)
	return err
}

// daemonUnderTest is a holder of the test binary and its reports.
type daemonUnderTest struct {
	t      *testing.T
	dir    string
	report *bufio.Reader
	pids   []int // every holder and worker seen
}

func startHolder(t *testing.T) *daemonUnderTest {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "report")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Read-write, so the fifo never reports EOF between workers.
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd := exec.Command("/proc/self/exe", HolderArgs...)
	cmd.Env = append(os.Environ(), "FDSTORE_TEST_DIR="+dir)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	d := &daemonUnderTest{t: t, dir: dir, report: bufio.NewReader(f), pids: []int{cmd.Process.Pid}}
	t.Cleanup(d.killAll)
	f.SetReadDeadline(time.Now().Add(30 * time.Second))
	return d
}

// next waits for the next worker's report: its pid and what it read.
func (d *daemonUnderTest) next() (int, string) {
	d.t.Helper()
	line, err := d.report.ReadString('\n')
	if err != nil {
		d.t.Fatalf("waiting for a worker: %v", err)
	}
	pid, what, _ := strings.Cut(strings.TrimSpace(line), " ")
	n, _ := strconv.Atoi(pid)
	d.pids = append(d.pids, n)
	return n, what
}

func (d *daemonUnderTest) pid(name string) int {
	b, err := os.ReadFile(filepath.Join(d.dir, name))
	if err != nil {
		d.t.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	d.pids = append(d.pids, n)
	return n
}

// killAll stops the holder and its worker first, so that neither can
// restart the other, then kills both.
func (d *daemonUnderTest) killAll() {
	var pidfds []int
	pids := d.pids
	for _, name := range []string{"holder.pid", "worker.pid"} {
		b, _ := os.ReadFile(filepath.Join(d.dir, name))
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			pids = append(pids, n)
		}
	}
	self, _ := os.Readlink("/proc/self/exe")
	for _, n := range pids {
		// Only this test binary's processes: a pid seen earlier may be
		// another's by now.
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", n)); exe != self {
			continue
		}
		if fd, err := unix.PidfdOpen(n, 0); err == nil {
			unix.PidfdSendSignal(fd, unix.SIGSTOP, nil, 0)
			pidfds = append(pidfds, fd)
		}
	}
	for _, fd := range pidfds {
		unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		waitPidfd(fd)
		unix.Close(fd)
	}
}

func kill(t *testing.T, pid int) {
	t.Helper()
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", pid, err)
	}
}

func TestWorkerKilledSuccessorTakesTheSamePipe(t *testing.T) {
	d := startHolder(t)
	first, what := d.next()
	if what != "new" {
		t.Fatalf("first worker took %q, want a fresh start", what)
	}
	for i := 0; i < 3; i++ {
		prev := d.pid("worker.pid")
		kill(t, prev)
		pid, got := d.next()
		if pid == prev || got != fmt.Sprintf("written-by-%d", first) {
			t.Fatalf("worker %d after killing %d read %q through the held pipe, want written-by-%d", pid, prev, got, first)
		}
	}
}

func TestHolderKilledWorkerStartsANewOne(t *testing.T) {
	d := startHolder(t)
	first, _ := d.next()
	holder := d.pid("holder.pid")
	kill(t, holder)
	// The worker starts a new holder and deposits its fds in it.
	if pid, what := d.next(); pid != first || what != "deposited" {
		t.Fatalf("after killing holder %d: worker %d reported %q, want %d deposited", holder, pid, what, first)
	}
	if d.pid("holder.pid") == holder {
		t.Fatal("holder.pid still names the killed holder")
	}
	kill(t, first)
	pid, got := d.next()
	if got != fmt.Sprintf("written-by-%d", first) {
		t.Fatalf("worker %d under the new holder read %q, want written-by-%d", pid, got, first)
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{0, 0, 100 * time.Millisecond, time.Second, 5 * time.Second, 5 * time.Second}
	for n, w := range want {
		if got := backoff(n); got != w {
			t.Errorf("backoff(%d) = %v, want %v", n, got, w)
		}
	}
}

func TestUpgradeKeepsThePipe(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the holder upgrades only to a binary root owns")
	}
	d := startHolder(t)
	first, _ := d.next()
	holder := d.pid("holder.pid")
	unix.Kill(first, unix.SIGUSR1)
	// Two reports, in either order: the new worker's (what it read
	// through the pipe the re-executed holder kept) and the old one's
	// answer.
	var successor int
	var got, answer string
	for i := 0; i < 2; i++ {
		pid, what := d.next()
		if pid == first {
			answer = what
		} else {
			successor, got = pid, what
		}
	}
	if answer != fmt.Sprintf("upgraded-to-%d", successor) {
		t.Fatalf("the old worker's upgrade answered %q, want upgraded-to-%d", answer, successor)
	}
	if got != fmt.Sprintf("written-by-%d", first) {
		t.Fatalf("worker %d after the upgrade read %q through the held pipe, want written-by-%d", successor, got, first)
	}
	if d.pid("holder.pid") != holder {
		t.Error("the upgrade changed the holder's pid")
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", holder))
	if !strings.Contains(string(cmdline), "--resume=") {
		t.Errorf("holder %d was not re-executed: %q", holder, cmdline)
	}
}

// TestWaitHolderGone: a starter waits while a holder keeps the lock and
// goes on once it is released (the holder exited); a lock kept past the
// limit is an error naming it.
func TestWaitHolderGone(t *testing.T) {
	dir := t.TempDir()
	held, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitHolderGone(dir, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), lockName) {
		t.Fatalf("lock held past the limit: %v, want an error naming %s", err, lockName)
	}
	done := make(chan error, 1)
	go func() { done <- WaitHolderGone(dir, time.Minute) }()
	held.Close()
	if err := <-done; err != nil {
		t.Fatalf("lock released: %v", err)
	}
	if err := WaitHolderGone(dir, time.Minute); err != nil {
		t.Fatalf("no holder: %v", err)
	}
}
