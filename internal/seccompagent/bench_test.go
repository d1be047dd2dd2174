package seccompagent

import (
	"context"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// The sysinfo benchmarks compare the kernel's answer with the agent's, the
// agent serving from its own epoll thread as in the daemon, with and
// without SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP. The caller runs on a thread
// of its own whose filter dies with it.

func BenchmarkSysinfoNative(b *testing.B) {
	var si unix.Sysinfo_t
	for i := 0; i < b.N; i++ {
		if err := sysinfo(&si); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSysinfoAgentPlainWakeUp(b *testing.B) { benchAgent(b, true) }

func BenchmarkSysinfoAgentSyncWakeUp(b *testing.B) { benchAgent(b, false) }

func benchAgent(b *testing.B, plain bool) {
	dir := b.TempDir()
	store := &memStore{files: map[string]*os.File{}}
	defer func() {
		for _, f := range store.files {
			f.Close()
		}
	}()
	a, err := New(Config{Dir: dir, Resolver: fixedResolver{}, Store: store, NoSyncWakeUp: plain})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	defer func() {
		cancel()
		<-done
		a.Close()
	}()
	errc := make(chan error, 1)
	go func() {
		fd, err := loadSysinfoFilter()
		if err == nil {
			err = sendListener(dir, "c1", fd)
			unix.Close(fd)
		}
		if err != nil {
			errc <- err
			return
		}
		var si unix.Sysinfo_t
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := sysinfo(&si); err != nil || si.Totalram != 64<<20 {
				errc <- fmt.Errorf("sysinfo through the agent: %v, totalram %d", err, si.Totalram)
				return
			}
		}
		b.StopTimer()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}
