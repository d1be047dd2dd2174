package initproc

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

func TestMessageRoundTrip(t *testing.T) {
	umask := uint32(0o22)
	msgs := []Message{
		{},
		{
			Config: &config.Config{
				ID: "c1", Rootfs: "/r", Namespaces: []config.Namespace{{Type: "pid"}, {Type: "network", Path: "/proc/1/ns/net"}},
				Process: config.Process{Args: []string{"/bin/true"}, Umask: &umask},
			},
			CgroupPaths: map[string]string{"cpu": "/sys/fs/cgroup/cpu/lkc/c1", "": "/sys/fs/cgroup/lkc/c1"},
			PreserveFDs: 2, Exec: true, NoNewKeyring: true,
			CreateState: []byte(`{"status":"creating"}`), StartState: []byte(`{"status":"created"}`),
			SeccompState: []byte(`{}`),
		},
	}
	for _, in := range msgs {
		b, err := in.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var out Message
		if err := out.UnmarshalBinary(b); err != nil {
			t.Fatalf("UnmarshalBinary: %v", err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
		}
	}
}

func TestMessageRefusesOtherForms(t *testing.T) {
	good, _ := (&Message{Config: &config.Config{ID: "c1"}}).MarshalBinary()
	for name, b := range map[string][]byte{
		"json":      []byte(`{"config":{"id":"c1"}}`),
		"version 2": append([]byte{2}, good[1:]...),
		"truncated": good[:len(good)-1],
		"trailing":  append(good, 0),
	} {
		var m Message
		if err := m.UnmarshalBinary(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestSendRecvSizes checks that messages of every size around the record
// limit, up to several records, arrive whole and alone.
func TestSendRecvSizes(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	sizes := []int{0, 1, maxRecord - 1, maxRecord, maxRecord + 1, 5*maxRecord + 7}
	errc := make(chan error, 1)
	go func() {
		for _, n := range sizes {
			if err := Send(fds[0], bytes.Repeat([]byte{byte(n)}, n)); err != nil {
				unix.Shutdown(fds[0], unix.SHUT_WR) // end the Recv waiting for it
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for _, n := range sizes {
		got, err := Recv(fds[1])
		if err != nil {
			t.Fatalf("Recv of %d bytes: %v (send: %v)", n, err, <-errc)
		}
		if !bytes.Equal(got, bytes.Repeat([]byte{byte(n)}, n)) {
			t.Fatalf("Recv of %d bytes: got %d bytes", n, len(got))
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestRecvPastReset: a peer that sends its last message and exits with
// one of ours unread leaves ECONNRESET reported before that message; Recv
// still returns the message (init's error naming what failed).
func TestRecvPastReset(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	if err := Send(fds[0], []byte("config the peer never reads")); err != nil {
		t.Fatal(err)
	}
	if err := Send(fds[1], []byte(ErrorPrefix+"tasks: no space left on device")); err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[1])
	got, err := Recv(fds[0])
	if err != nil || string(got) != ErrorPrefix+"tasks: no space left on device" {
		t.Fatalf("Recv = %q, %v; want the peer's last message", got, err)
	}
	if got, err := Recv(fds[0]); err != nil || len(got) != 0 {
		t.Errorf("after it: %q, %v; want end of stream", got, err)
	}
}

// TestDetachedRoundTrip: the mounts made by the parent reach init as
// close-on-exec fds of the same files, by their index in the config's
// mounts, and a record naming a mount init was not told about, or one
// twice, is refused.
func TestDetachedRoundTrip(t *testing.T) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(pair[0]); unix.Close(pair[1]) })
	made := map[int]*os.File{}
	for _, i := range []int{3, 5} {
		f, err := os.Create(filepath.Join(t.TempDir(), "m"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		made[i] = f
	}
	if err := SendDetached(pair[0], made); err != nil {
		t.Fatal(err)
	}
	got, err := recvDetached(pair[1], []int{2, 3, 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(made) {
		t.Fatalf("received mounts %v, want indexes 3 and 5", got)
	}
	for i, f := range got {
		if !sameFile(t, f, made[i]) {
			t.Errorf("mount %d: not the file sent", i)
		}
		if flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("mount %d: fd flags %#x, %v: want close-on-exec", i, flags, err)
		}
		f.Close()
	}
	if err := SendDetached(pair[0], made); err != nil {
		t.Fatal(err)
	}
	if got, err := recvDetached(pair[1], []int{3}); err == nil {
		t.Errorf("mount 5, not named in the message, was taken: %v", got)
	}
}

func sameFile(t *testing.T, a, b *os.File) bool {
	t.Helper()
	var sa, sb unix.Stat_t
	if err := unix.Fstat(int(a.Fd()), &sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fstat(int(b.Fd()), &sb); err != nil {
		t.Fatal(err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
