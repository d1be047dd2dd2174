package cr

import (
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A signal before CRIU's images are written fails its next notification
// and kills nothing; one while it serves a lazy dump's pages kills it.
func TestDumpInterrupt(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	i := watchInterrupt(func() (<-chan os.Signal, func()) { return sigs, func() {} })
	defer i.stop()
	if err := i.notified("pre-dump"); err != nil {
		t.Fatalf("notification before any signal: %v", err)
	}
	sigs <- unix.SIGTERM
	for deadline := time.Now().Add(10 * time.Second); i.cause() == nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the signal never reached the watch")
		}
	}
	if err := i.notified("status-ready"); err == nil || !strings.Contains(err.Error(), "interrupted by SIGTERM") {
		t.Errorf("status-ready after SIGTERM: %v, want the interruption", err)
	}
	select {
	case err := <-i.abort:
		t.Errorf("CRIU killed (%v) while a notification could stop it", err)
	default:
	}

	sigs = make(chan os.Signal, 1)
	i = watchInterrupt(func() (<-chan os.Signal, func()) { return sigs, func() {} })
	defer i.stop()
	if err := i.notified("status-ready"); err != nil {
		t.Fatal(err)
	}
	sigs <- unix.SIGINT
	select {
	case err := <-i.abort:
		if !strings.Contains(err.Error(), "interrupted by SIGINT") {
			t.Errorf("abort says %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("a signal while CRIU serves pages did not stop it")
	}
}
