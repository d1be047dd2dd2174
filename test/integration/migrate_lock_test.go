package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMigrateReadsRecordUnderLock checks that `lkc migrate` reads the
// container's status and record under one lock. Another command holds the
// container when the migration begins (the test holds its lock, as an
// `lkc update` or a `delete` does while it works) and the container stops
// meanwhile: the migration must wait for the lock and then see the
// stopped container, refusing it in one line, rather than judge the status
// from before the other command and the record from after.
func TestMigrateReadsRecordUnderLock(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "1000"}, nil), id)
	pid := int(e.state(id)["pid"].(float64))
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("lkc-migration-test-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lock, err := os.Open(filepath.Join(e.root, id))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	// No receiver: the migration must end before it would connect.
	mig := exec.Command(lkcBinary, "--root", e.root, "migrate", "--token-file", token, id, "127.0.0.1:9")
	var stderr bytes.Buffer
	mig.Stderr = &stderr
	if err := mig.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mig.Wait() }()
	t.Cleanup(func() { mig.Process.Kill() })
	waitBlockedOnFlock(t, mig.Process.Pid, done)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(id, "stopped")
	lock.Close()
	select {
	case err := <-done:
		want := "cannot migrate container " + id + ": it is stopped"
		if err == nil || !strings.Contains(stderr.String(), want) {
			t.Fatalf("lkc migrate of a container stopped while another command held it: %v, stderr %q; want a failure with %q", err, stderr.String(), want)
		}
		if lines := strings.Count(strings.TrimSpace(stderr.String()), "\n"); lines != 0 {
			t.Errorf("want a one-line error, got %q", stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("lkc migrate did not end 30 s after the lock was free; stderr %q", stderr.String())
	}
	e.mustLkc("delete", id)
}

// waitBlockedOnFlock waits until process pid waits for a flock, as
// /proc/locks shows a blocked request ("->") with its pid.
func waitBlockedOnFlock(t *testing.T, pid int, exited <-chan error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		locks, err := os.ReadFile("/proc/locks")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(locks), "\n") {
			f := strings.Fields(line)
			if len(f) > 5 && f[1] == "->" && f[2] == "FLOCK" && f[5] == strconv.Itoa(pid) {
				return
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("lkc migrate ended before it waited for the container's lock: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatal("lkc migrate never waited for the container's lock")
}
