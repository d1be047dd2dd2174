package integration

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A container that arrived through `lkc serve` takes its bundle with it
// when it is deleted there, so the same id can arrive again.
func TestMigrateDeleteRemovesBundle(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	h.startServe(b)
	id, _ := h.runContainer(a, migCounter, nil)
	mustMigrate(t, h, a, b, id, "--shared-storage", "--mode", "stopcopy")
	bundle := filepath.Join(b.bundles, id)
	if _, err := os.Stat(filepath.Join(bundle, "config.json")); err != nil {
		t.Fatalf("the arrived container's bundle: %v", err)
	}
	b.e.mustLkc("delete", "--force", id)
	if _, err := os.Lstat(bundle); !os.IsNotExist(err) {
		t.Fatalf("deleting %s on the target left its bundle %s (%v)", id, bundle, err)
	}
	h.runContainerID(a, id, migCounter, nil)
	mustMigrate(t, h, a, b, id, "--shared-storage", "--mode", "stopcopy")
	b.e.waitStatus(id, "running")
}

// A container whose id ends in ".pending" is not taken for the mark of an
// unfinished migration of another: a restarted receiver keeps both.
func TestMigrateDottedIDSurvivesRestart(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	h.startServe(b)
	id, _ := h.runContainer(a, migCounter, nil)
	dotted := id + ".pending"
	h.runContainerID(a, dotted, migCounter, nil)
	for _, c := range []string{id, dotted} {
		mustMigrate(t, h, a, b, c, "--shared-storage", "--mode", "stopcopy")
	}
	b.killServe()
	h.startServe(b)
	for _, c := range []string{id, dotted} {
		if r := b.e.lkc("state", c); r.code != 0 {
			log, _ := os.ReadFile(b.serveLog)
			t.Fatalf("container %s is gone after the receiver's restart: %v\nreceiver log:\n%s", c, r, log)
		}
		b.e.waitStatus(c, "running")
		if _, err := os.Stat(filepath.Join(b.bundles, c, "config.json")); err != nil {
			t.Errorf("the bundle of %s after the receiver's restart: %v", c, err)
		}
	}
}

// capture records every frame on interface dev of the network namespace
// at nsPath (AF_PACKET), until stop; it returns what it saw.
func capture(t *testing.T, nsPath, dev string) (stop func() []byte) {
	t.Helper()
	type res struct {
		fd  int
		err error
	}
	ch := make(chan res, 1)
	go func() {
		// As dialFromLAN: back in our namespace before unlocking.
		runtime.LockOSThread()
		fd, err := packetSocket(nsPath, dev)
		if !errors.Is(err, errNetnsStuck) {
			runtime.UnlockOSThread()
		}
		ch <- res{fd, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("capturing on %s in %s: %v", dev, nsPath, r.err)
	}
	var done atomic.Bool
	out := make(chan []byte, 1)
	go func() {
		var all []byte
		buf := make([]byte, 256<<10)
		for !done.Load() {
			n, _, err := unix.Recvfrom(r.fd, buf, 0)
			if n > 0 {
				all = append(all, buf[:n]...)
			}
			if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
				break
			}
		}
		unix.Close(r.fd)
		out <- all
	}()
	var got []byte
	var once sync.Once
	stop = func() []byte {
		once.Do(func() {
			done.Store(true)
			got = <-out
		})
		return got
	}
	t.Cleanup(func() { stop() })
	return stop
}

// packetSocket opens, in the namespace at nsPath, a raw packet socket
// bound to dev that wakes up every 100 ms.
func packetSocket(nsPath, dev string) (int, error) {
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(self)
	ns, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(ns)
	if err := unix.Setns(ns, unix.CLONE_NEWNET); err != nil {
		return -1, err
	}
	fd, err := func() (int, error) {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return -1, err
		}
		proto := int(htons(unix.ETH_P_ALL))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return -1, err
		}
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20)
		tv := unix.Timeval{Usec: 100000}
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return -1, err
		}
		return fd, nil
	}()
	if berr := unix.Setns(self, unix.CLONE_NEWNET); berr != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("%w: %v", errNetnsStuck, berr)
	}
	return fd, err
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Everything a migration sends is encrypted: captured on the source
// host's link, neither a secret in the container's environment, nor a
// file of its rootfs, nor a string that exists only in its memory
// appears, whichever memory mode the host picks (post-copy pages go
// through their own connection).
func TestMigrateEncrypted(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	h.startServe(b)
	tag := fmt.Sprintf("%x", time.Now().UnixNano())
	envSecret := "ENVSECRET-" + tag
	fileSecret := "FILESECRET-" + tag
	// Only the shell's memory holds the two halves joined, 256 times.
	memSecret := "MEMSEC-" + tag
	half := len(memSecret) / 2
	rootfs := a.e.writableRootfs()
	if err := os.WriteFile(filepath.Join(rootfs, "secret.txt"), []byte(strings.Repeat(fileSecret+"\n", 500)), 0o600); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("m=$(printf '%%s%%s' '%s' '%s'); i=0; while [ $i -lt 8 ]; do m=\"$m$m\"; i=$((i+1)); done; %s",
		memSecret[:half], memSecret[half:], migCounter[2])
	id, _ := h.runContainer(a, []string{"sh", "-c", script}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = rootfs, false
		s.Process.Env = append(s.Process.Env, "LKC_TEST_SECRET="+envSecret)
	})
	before := migCount(t, a.e, id)
	stop := capture(t, "/run/netns/"+a.ns, "uplink")
	s := mustMigrate(t, h, a, b, id)
	wire := stop()
	t.Logf("%s move: %+v; %d bytes captured", s.Mode, s, len(wire))
	checkCounting(t, b, id, before)
	if int64(len(wire)) < s.Bytes {
		t.Fatalf("captured %d bytes, fewer than the %d the move sent", len(wire), s.Bytes)
	}
	for what, secret := range map[string]string{"environment": envSecret, "rootfs file": fileSecret, "memory": memSecret} {
		if bytes.Contains(wire, []byte(secret)) {
			t.Errorf("the container's %s secret crossed the link in the clear", what)
		}
	}
	b.e.mustLkc("delete", "--force", id)
}

// A container whose stdout is a file on the source writes on, after the
// move, into a file the receiver made in its bundle (the receiver opens
// no path the sender names).
func TestMigrateStdioFile(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	h.startServe(b)
	id := a.e.id()
	b.e.ids = append(b.e.ids, id)
	bundle := a.e.bundle([]string{"sh", "-c", "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.02; done"}, nil)
	out, err := os.OpenFile(filepath.Join(t.TempDir(), "out.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	run := exec.Command(lkcBinary, "--root", a.root, "run", "-d", "--bundle", bundle, id)
	run.Stdout = out
	if err := run.Run(); err != nil {
		t.Fatalf("lkc run -d: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	mustMigrate(t, h, a, b, id, "--shared-storage", "--mode", "stopcopy")
	b.e.waitStatus(id, "running")
	made := filepath.Join(b.bundles, id, "stdio-1")
	deadline := time.Now().Add(settle)
	for {
		data, err := os.ReadFile(made)
		if err == nil && strings.Contains(string(bytes.Trim(data, "\x00")), "line ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container wrote nothing to %s after the move (%v)", made, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.e.mustLkc("delete", "--force", id)
}
