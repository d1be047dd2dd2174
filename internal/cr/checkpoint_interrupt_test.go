package cr

import (
	"context"
	"errors"
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
	i := watchInterrupt(func() (<-chan os.Signal, func()) { return sigs, func() {} }, nil)
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
	i = watchInterrupt(func() (<-chan os.Signal, func()) { return sigs, func() {} }, nil)
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

// An Abort that has ended fails the next notification at once, named by
// its cause, whether or not the watch has seen it yet; one that ends
// while CRIU serves a lazy dump's pages stops it.
func TestDumpAbort(t *testing.T) {
	why := errors.New("a second signal")
	ctx, cancel := context.WithCancelCause(context.Background())
	i := watchInterrupt(nil, ctx)
	defer i.stop()
	if err := i.notified("pre-dump"); err != nil {
		t.Fatalf("notification before the abort: %v", err)
	}
	cancel(why)
	err := i.notified("network-lock")
	if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "interrupted by a second signal") {
		t.Errorf("notification after the abort: %v, want the interruption named by its cause", err)
	}

	ctx, cancel = context.WithCancelCause(context.Background())
	i = watchInterrupt(nil, ctx)
	defer i.stop()
	if err := i.notified("status-ready"); err != nil {
		t.Fatal(err)
	}
	cancel(why)
	select {
	case err := <-i.abort:
		if !errors.Is(err, ErrInterrupted) {
			t.Errorf("abort says %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("an abort while CRIU serves pages did not stop it")
	}
}
