package netpolicy

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/testutil"
)

// helperEnv makes the test binary run sockHelper instead of the tests.
const helperEnv = "LKC_NETPOLICY_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		sockHelper()
		return
	}
	os.Exit(m.Run())
}

// sockHelper waits for a line on stdin (it is in the cgroup by then),
// then tries each socket call and prints its errno (0 when it worked).
func sockHelper() {
	bufio.NewReader(os.Stdin).ReadString('\n')
	lo := [4]byte{127, 0, 0, 1}
	for _, port := range []int{81, 80} {
		to := &unix.SockaddrInet4{Port: port, Addr: lo}
		try("sendto"+strconv.Itoa(port), unix.AF_INET, unix.SOCK_DGRAM, func(fd int) error { return unix.Sendto(fd, []byte("x"), 0, to) })
	}
	// 0.0.0.0 is the loopback to sendto(2) and connect(2).
	unspec := &unix.SockaddrInet4{Port: 81}
	try("sendtoany81", unix.AF_INET, unix.SOCK_DGRAM, func(fd int) error { return unix.Sendto(fd, []byte("x"), 0, unspec) })
	try("connectany81", unix.AF_INET, unix.SOCK_STREAM, func(fd int) error { return unix.Connect(fd, unspec) })
	// UDP-Lite: the kernel runs no connect hook for it, and a connected
	// socket's sends carry no address for the sendmsg hook.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDPLITE)
	if err == nil {
		err = unix.Connect(fd, &unix.SockaddrInet4{Port: 81, Addr: lo})
		if err == nil {
			_, err = unix.Write(fd, []byte("x"))
		}
		unix.Close(fd)
	}
	errno, _ := err.(unix.Errno)
	fmt.Printf("udplite81 %d\n", errno)
	for _, port := range []int{82, 83} {
		at := &unix.SockaddrInet4{Port: port, Addr: lo}
		try("bind"+strconv.Itoa(port), unix.AF_INET, unix.SOCK_STREAM, func(fd int) error { return unix.Bind(fd, at) })
	}
	// A wildcard bind listens on every local address of its family, and
	// :: on an IPv6 socket on the IPv4 ones too.
	anyMapped := [16]byte{10: 0xff, 11: 0xff}
	for _, port := range []int{84, 85, 86, 87} {
		p := strconv.Itoa(port)
		try("bindany"+p, unix.AF_INET, unix.SOCK_STREAM, func(fd int) error { return unix.Bind(fd, &unix.SockaddrInet4{Port: port}) })
		try("bind6any"+p, unix.AF_INET6, unix.SOCK_STREAM, func(fd int) error { return unix.Bind(fd, &unix.SockaddrInet6{Port: port}) })
		try("bind6mappedany"+p, unix.AF_INET6, unix.SOCK_STREAM, func(fd int) error { return unix.Bind(fd, &unix.SockaddrInet6{Port: port, Addr: anyMapped}) })
		// An IPV6_V6ONLY socket's :: listens on IPv6 alone.
		try("bind6onlyany"+p, unix.AF_INET6, unix.SOCK_STREAM, func(fd int) error {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
				return err
			}
			return unix.Bind(fd, &unix.SockaddrInet6{Port: port})
		})
	}
}

// try tries f on a new socket of family and type typ and prints its
// errno (EAFNOSUPPORT for AF_INET6 on a host without IPv6).
func try(name string, family, typ int, f func(fd int) error) {
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		err = f(fd)
		unix.Close(fd)
	}
	errno, _ := err.(unix.Errno)
	fmt.Printf("%s %d\n", name, errno)
}

// TestEnforce attaches a policy to a cgroup of its own, as create does,
// and checks in a process there that the kernel runs the programs: UDP
// datagrams sent without a connect to a denied port, a UDP-Lite socket
// (whose connect and sends no hook checks), binds of a denied port, and
// wildcard binds that would listen on a denied address, fail with EPERM;
// their neighbours work.
func TestEnforce(t *testing.T) {
	testutil.RequiresRoot(t)
	enforceAndTry(t, "deny connect 127.0.0.0/8 port 81, deny bind any port 82, deny bind 127.0.0.1 port 84, "+wildcardRules)
}

// TestEnforceMappedRule: a rule written with an IPv4-mapped IPv6 address
// binds IPv4 sockets too, which reach the address without the IPv6
// programs.
func TestEnforceMappedRule(t *testing.T) {
	testutil.RequiresRoot(t)
	enforceAndTry(t, "deny connect ::ffff:127.0.0.0/104 port 81, deny bind any port 82, deny bind ::ffff:127.0.0.1 port 84, "+wildcardRules)
}

// wildcardRules end both tests' policies: an IPv6 deny (port 85) and,
// on port 87, allow rules that a wildcard bind matches only as written.
const wildcardRules = "deny bind ::1 port 85, allow bind 127.0.0.1 port 87, allow bind :: port 87, deny bind any port 87"

// enforceAndTry attaches policy (which must deny what TestEnforce's does)
// to a cgroup of the helper's, and checks what its IPv4 calls get.
func enforceAndTry(t *testing.T, policy string) {
	p, err := Parse(policy)
	if err != nil {
		t.Fatal(err)
	}
	out := runHelper(t, func(dir string) error { return attach(p, dir) })
	var want strings.Builder
	fmt.Fprintf(&want, "sendto81 %d\nsendto80 0\nsendtoany81 %d\nconnectany81 %d\nudplite81 %d\nbind82 %d\nbind83 0\n",
		unix.EPERM, unix.EPERM, unix.EPERM, unix.EPERM, unix.EPERM)
	// What 0.0.0.0, :: and ::ffff:0.0.0.0 get for each port, and :: on a
	// v6-only socket (judged by the IPv6 rules alone where the programs
	// can read IPV6_V6ONLY, else as on a dual-stack one).
	v6onlyAny84 := unix.Errno(0)
	if !readsV6Only(t, p) {
		v6onlyAny84 = unix.EPERM
	}
	wildcard := map[int][4]unix.Errno{
		84: {unix.EPERM, unix.EPERM, unix.EPERM, v6onlyAny84}, // dual-stack :: listens on 127.0.0.1 too
		85: {0, unix.EPERM, 0, unix.EPERM},
		86: {0, 0, 0, 0},
		87: {unix.EPERM, 0, unix.EPERM, 0},
	}
	no6 := noIPv6()
	for _, port := range []int{84, 85, 86, 87} {
		w := wildcard[port]
		if no6 != 0 {
			w[1], w[2], w[3] = no6, no6, no6
		}
		fmt.Fprintf(&want, "bindany%d %d\nbind6any%d %d\nbind6mappedany%d %d\nbind6onlyany%d %d\n", port, w[0], port, w[1], port, w[2], port, w[3])
	}
	if out != want.String() {
		t.Errorf("got\n%swant\n%s", out, want.String())
	}
}

// TestPostBind6 attaches the post-bind program alone, as if the bind6
// one had let a bind of :: through on a socket that was v6-only then (a
// thread can clear IPV6_V6ONLY between the two): it refuses the socket
// dual-stack once bound, on the ports of the IPv4 deny rule, and lets
// the v6-only one be, and every other bind.
func TestPostBind6(t *testing.T) {
	testutil.RequiresRoot(t)
	if noIPv6() != 0 {
		t.Skip("no IPv6")
	}
	p, err := Parse("deny bind 127.0.0.1 port 84")
	if err != nil {
		t.Fatal(err)
	}
	if !readsV6Only(t, p) {
		t.Skip("the programs cannot read IPV6_V6ONLY here")
	}
	out := runHelper(t, func(dir string) error {
		cg, err := os.Open(dir)
		if err != nil {
			return err
		}
		defer cg.Close()
		if bit, err := p.attachPostBind6(cg); bit == nil {
			return fmt.Errorf("post_bind6 not attached (%v)", err)
		}
		return nil
	})
	for _, want := range []string{"bind6any84 1\n", "bind6onlyany84 0\n", "bindany84 0\n", "bind6mappedany84 0\n", "bind6any85 0\n", "bind82 0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("helper printed\n%swant a line %q", out, want)
		}
	}
}

// runHelper starts sockHelper, puts it in a cgroup v2 directory of its
// own, which attachTo attaches programs to, and returns what it printed.
func runHelper(t *testing.T, attachTo func(dir string) error) string {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	t.Cleanup(func() {
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})

	stateDir := t.TempDir()
	if v2, _ := os.Stat("/sys/fs/cgroup/cgroup.controllers"); v2 != nil {
		self, err := selfUnified()
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join("/sys/fs/cgroup", self, "lkc-netpolicy-test-"+strconv.Itoa(os.Getpid())+"-"+t.Name())
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(dir) })
		if err := attachTo(dir); err != nil {
			t.Fatal(err)
		}
		if err := Join(dir, cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
	} else {
		if err := CheckHost(""); err != nil {
			t.Skip(err)
		}
		t.Cleanup(func() {
			if err := Release(stateDir); err != nil {
				t.Error(err)
			}
		})
		dir, err := ownCgroup(stateDir, cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if err := attachTo(dir); err != nil {
			t.Fatal(err)
		}
	}
	stdin.Write([]byte("go\n"))
	err = cmd.Wait()
	waited = true
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	return out.String()
}

// readsV6Only says whether attach gives p's programs the socket's
// IPV6_V6ONLY here: the kernel's BTF says where it is, and the kernel
// loads a program that reads it.
func readsV6Only(t *testing.T, p *Policy) bool {
	bit, err := v6onlyBit()
	if err != nil {
		t.Logf("no IPV6_V6ONLY to read: %v", err)
		return false
	}
	fd, err := loadProg(unix.BPF_CGROUP_INET6_POST_BIND, mustAssemble(t, p.postBind6(bit)))
	if err != nil {
		t.Logf("a program reading IPV6_V6ONLY: %v", err)
		return false
	}
	unix.Close(fd)
	return true
}

// noIPv6 is the error of an IPv6 socket on a host without IPv6, 0 on one
// with it.
func noIPv6() unix.Errno {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err.(unix.Errno)
	}
	unix.Close(fd)
	return 0
}
