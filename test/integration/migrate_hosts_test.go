package integration

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/testutil"
)

// testHosts are two "hosts" on this machine for migration tests: network
// namespaces A and B, each with a bridge br0 and its own lkc root, joined
// through a third namespace, the LAN, which also holds the client. A
// container's eth0 is a veth whose peer sits on its host's br0, so its
// address is reachable from the LAN wherever it runs.
type testHosts struct {
	t      *testing.T
	tag    string // unique per test run
	lan    string
	hosts  [2]*testHost
	subnet string // "10.x.y"
	token  string // token file
	n      int    // containers plumbed
}

type testHost struct {
	ns, ip, root, bundles string
	e                     *env   // this host's lkc (--root)
	cgParent              string // its serve's --cgroup-parent
	// serveIn, when set, is a memory cgroup directory its serve runs in;
	// serveEnv is added to its serve's environment.
	serveIn  string
	serveEnv []string
	serve    *exec.Cmd
	serveLog string
}

func newTestHosts(t *testing.T) *testHosts {
	t.Helper()
	testutil.RequiresRoot(t)
	testutil.RequiresBinary(t, "ip")
	testutil.RequiresBinary(t, "nsenter")
	if _, err := os.Stat("/opt/lkc/criu/criu"); err != nil && os.Getenv("LKC_CRIU") == "" {
		t.Skip("needs CRIU 4 at /opt/lkc/criu/criu: run scripts/install-criu.sh")
	}
	pid := os.Getpid()
	h := &testHosts{t: t, tag: fmt.Sprintf("%d%d", pid%10000, time.Now().UnixNano()%1000)}
	h.subnet = fmt.Sprintf("10.%d.%d", 100+pid%100, time.Now().Nanosecond()%250)
	h.lan = "lkcm-lan-" + h.tag
	t.Cleanup(h.cleanup)
	h.ip("netns", "add", h.lan)
	h.ip("-n", h.lan, "link", "add", "lan0", "type", "bridge")
	h.ip("-n", h.lan, "addr", "add", h.subnet+".1/24", "dev", "lan0")
	h.ip("-n", h.lan, "link", "set", "lan0", "up")
	h.ip("-n", h.lan, "link", "set", "lo", "up")
	for i := range h.hosts {
		h.hosts[i] = h.newHost(i)
	}
	// Runs before either host's own check for leaks: a container may end on
	// either host, and each host's check sees the other's cgroups.
	t.Cleanup(func() {
		for _, x := range h.hosts {
			for _, id := range x.e.ids {
				x.e.lkc("delete", "--force", id)
			}
		}
	})
	h.token = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(h.token, []byte("lkc-migration-test-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *testHosts) newHost(i int) *testHost {
	name := string(rune('a' + i))
	x := &testHost{ns: "lkcm-" + name + "-" + h.tag, ip: fmt.Sprintf("%s.%d", h.subnet, 2+i)}
	x.cgParent = "lkc/" + x.ns
	x.e = newEnv(h.t)
	x.root = x.e.root
	x.bundles = h.t.TempDir()
	up := "up" + name + h.tag
	h.ip("netns", "add", x.ns)
	h.ip("-n", x.ns, "link", "set", "lo", "up")
	// A bridge without an address of its own takes its lowest port's,
	// which changes as containers come and go; the other host's ARP
	// entry then names an address nothing here answers to any more.
	mac := fmt.Sprintf("02:6c:6b:%02x:%02x:%02x", rand.IntN(256), rand.IntN(256), 2+i)
	h.ip("-n", x.ns, "link", "add", "br0", "address", mac, "type", "bridge")
	h.ip("-n", h.lan, "link", "add", up, "type", "veth", "peer", "name", "uplink", "netns", x.ns)
	h.ip("-n", h.lan, "link", "set", up, "master", "lan0", "up")
	h.ip("-n", x.ns, "link", "set", "uplink", "master", "br0", "up")
	h.ip("-n", x.ns, "addr", "add", x.ip+"/24", "dev", "br0")
	h.ip("-n", x.ns, "link", "set", "br0", "up")
	return x
}

func (h *testHosts) ip(args ...string) {
	h.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		h.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (h *testHosts) cleanup() {
	for _, x := range h.hosts {
		if x != nil && x.serve != nil {
			x.stopServe()
		}
	}
	for _, x := range h.hosts {
		if x != nil {
			// The --cgroup-parent directories lkc created above each
			// arrived container's cgroup.
			for _, pattern := range []string{"/sys/fs/cgroup/*/lkc/" + x.ns, "/sys/fs/cgroup/*/*/*/lkc/" + x.ns, "/sys/fs/cgroup/lkc/" + x.ns} {
				dirs, _ := filepath.Glob(pattern)
				for _, d := range dirs {
					if err := os.Remove(d); err != nil {
						h.t.Errorf("leak: cgroup %s: %v", d, err)
					}
				}
			}
			exec.Command("ip", "netns", "del", x.ns).Run()
		}
	}
	exec.Command("ip", "netns", "del", h.lan).Run()
}

// lkcIn runs lkc with host x's root inside x's network namespace.
func (h *testHosts) lkcIn(x *testHost, args ...string) *exec.Cmd {
	full := append([]string{"--net=/run/netns/" + x.ns, lkcBinary, "--root", x.root}, args...)
	return exec.Command("nsenter", full...)
}

// startServe starts x's receiver, with extra flags, and waits until it
// listens.
func (h *testHosts) startServe(x *testHost, extra ...string) {
	h.t.Helper()
	x.serveLog = filepath.Join(h.t.TempDir(), "serve.log")
	logf, err := os.Create(x.serveLog)
	if err != nil {
		h.t.Fatal(err)
	}
	defer logf.Close()
	// Both hosts share this machine's cgroup tree: each keeps its own.
	x.serve = h.lkcIn(x, append([]string{"serve", "--listen", x.ip + ":7070", "--token-file", h.token, "--bundle-dir", x.bundles,
		"--cgroup-parent", x.cgParent}, extra...)...)
	if x.serveIn != "" {
		x.serve = inCgroupDir(x.serveIn, x.serve)
	}
	if x.serveEnv != nil {
		x.serve.Env = append(os.Environ(), x.serveEnv...)
	}
	x.serve.Stdout, x.serve.Stderr = logf, logf
	if err := x.serve.Start(); err != nil {
		h.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(x.serveLog)
		if strings.Contains(string(data), "listening on") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	data, _ := os.ReadFile(x.serveLog)
	h.t.Fatalf("lkc serve never listened: %s", data)
}

func (x *testHost) stopServe() {
	x.serve.Process.Signal(unix.SIGTERM)
	done := make(chan struct{})
	go func() { x.serve.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		x.serve.Process.Kill()
		<-done
	}
	x.serve = nil
}

// killServe kills x's receiver as a crash would.
func (x *testHost) killServe() {
	x.serve.Process.Kill()
	x.serve.Wait()
	x.serve = nil
}

// runContainer starts a detached container on host x running args, and
// plumbs its eth0 onto x's br0 with the next free address, which it
// returns.
func (h *testHosts) runContainer(x *testHost, args []string, mutate func(*specs.Spec)) (id, addr string) {
	h.t.Helper()
	return h.runContainerID(x, x.e.id(), args, mutate)
}

// runContainerID is runContainer with the container's id chosen by the
// caller.
func (h *testHosts) runContainerID(x *testHost, id string, args []string, mutate func(*specs.Spec)) (string, string) {
	h.t.Helper()
	for _, y := range h.hosts {
		// Each host's cleanup deletes it, wherever it ended.
		if !slices.Contains(y.e.ids, id) {
			y.e.ids = append(y.e.ids, id)
		}
	}
	b := x.e.bundle(args, mutate)
	// Its stdio is /dev/null, which exists on every host; a file of this
	// host's test harness would not exist on another (see docs/migrate.md).
	if err := exec.Command(lkcBinary, "--root", x.root, "run", "-d", "--bundle", b, id).Run(); err != nil {
		h.t.Fatalf("lkc run -d %s: %v", id, err)
	}
	h.n++
	addr := fmt.Sprintf("%s.%d", h.subnet, 100+h.n)
	pid := fmt.Sprint(x.e.state(id)["pid"])
	peer := fmt.Sprintf("vc%d%s", h.n, h.tag)
	h.ip("link", "add", peer, "netns", x.ns, "type", "veth", "peer", "name", "eth0", "netns", pid)
	h.ip("-n", x.ns, "link", "set", peer, "master", "br0", "up")
	for _, args := range [][]string{{"addr", "add", addr + "/24", "dev", "eth0"}, {"link", "set", "eth0", "up"}, {"link", "set", "lo", "up"}} {
		cmd := exec.Command("nsenter", append([]string{"-t", pid, "-n", "ip"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			h.t.Fatalf("ip %v in the container: %v: %s", args, err, out)
		}
	}
	return id, addr
}

// migrate runs lkc migrate on host from to host to's receiver.
func (h *testHosts) migrate(from, to *testHost, id string, flags ...string) result {
	h.t.Helper()
	args := append([]string{"migrate", "--token-file", h.token, "--json"}, flags...)
	return h.run(from, append(args, id, to.ip+":7070")...)
}

// run runs lkc with args in host from's network namespace.
func (h *testHosts) run(from *testHost, args ...string) result {
	h.t.Helper()
	cmd := h.lkcIn(from, args...)
	out, errf := from.e.tempFile(), from.e.tempFile()
	defer out.Close()
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = out, errf
	err := cmd.Run()
	r := result{stdout: readAll(out), stderr: readAll(errf)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// dialFromLAN opens a TCP connection from the LAN namespace, the client
// that sits outside both hosts.
func (h *testHosts) dialFromLAN(addr string) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		// Enter the LAN's namespace on a locked thread and come back
		// before unlocking: a locked goroutine that exits kills its
		// thread, and when that thread is the main one Go wedges it
		// instead, leaving /proc/self/ns/net pointing at the LAN for
		// every later test in this process.
		runtime.LockOSThread()
		c, err := dialInNetns("/run/netns/"+h.lan, addr)
		if !errors.Is(err, errNetnsStuck) {
			runtime.UnlockOSThread()
		}
		ch <- res{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

var errNetnsStuck = errors.New("cannot return to the original network namespace")

// dialInNetns dials addr from the network namespace at path and moves
// the calling, locked thread back to its own namespace afterwards. It
// returns errNetnsStuck (wrapped) when the way back failed, in which
// case the thread must stay locked so that it dies with the goroutine.
func dialInNetns(path, addr string) (net.Conn, error) {
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(self)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if berr := unix.Setns(self, unix.CLONE_NEWNET); berr != nil {
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("%w: %v", errNetnsStuck, berr)
	}
	return c, err
}

// readLine reads one line with a deadline.
func readLine(c net.Conn, r *bufio.Reader, d time.Duration) (string, error) {
	c.SetReadDeadline(time.Now().Add(d))
	s, err := r.ReadString('\n')
	return strings.TrimSpace(s), err
}
