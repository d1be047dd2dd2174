package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func netPolicy(v string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.net-policy": v}
	}
}

// timedExec runs a command in the container and returns its output and
// how long it took.
func (e *env) timedExec(id string, args ...string) (string, time.Duration) {
	start := time.Now()
	r := e.lkc(append([]string{"exec", id}, args...)...)
	return r.stdout + r.stderr, time.Since(start)
}

// TestNetPolicyRefusesAtOnce runs a container whose policy denies connect
// to one port and bind of another, and checks, as root in the container
// with the default capabilities, that both fail with EPERM at once while
// their neighbours do not, over IPv4 and an IPv4-mapped IPv6 address,
// that a bind denied on 127.0.0.1 alone refuses a listener on the
// wildcard (busybox nc -l binds :: or 0.0.0.0), which would listen there
// too, and that root there cannot reach the cgroup v2 hierarchy to
// escape the programs.
func TestNetPolicyRefusesAtOnce(t *testing.T) {
	e := newEnv(t)
	// The container's own process tries first, before lo is up.
	init := "nc 127.0.0.1 81 2>/dev/shm/init.err; exec sleep 100"
	b := e.bundle([]string{"sh", "-c", init}, netPolicy("deny connect 127.0.0.0/8 port 81, deny bind any port 82, deny bind 127.0.0.1 port 84"))
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", b, id)
	var initErr string
	for try := 0; try < 100 && !strings.Contains(initErr, "nc:"); try++ {
		time.Sleep(20 * time.Millisecond)
		initErr, _ = e.timedExec(id, "cat", "/dev/shm/init.err")
	}
	if !strings.Contains(initErr, "Operation not permitted") {
		t.Errorf("the container's process: %q, want EPERM", initErr)
	}
	e.mustLkc("exec", id, "ip", "link", "set", "lo", "up")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"nc", "127.0.0.1", "81"}, "Operation not permitted"},
		{[]string{"nc", "::ffff:127.0.0.1", "81"}, "Operation not permitted"},
		// The unspecified address is the loopback to connect(2).
		{[]string{"nc", "0.0.0.0", "81"}, "Operation not permitted"},
		{[]string{"nc", "::ffff:0.0.0.0", "81"}, "Operation not permitted"},
		{[]string{"nc", "::", "81"}, "Connection refused"},
		{[]string{"nc", "127.0.0.1", "80"}, "Connection refused"},
		{[]string{"timeout", "2", "nc", "-l", "-p", "82"}, "Operation not permitted"},
		{[]string{"timeout", "2", "nc", "-l", "-p", "84"}, "Operation not permitted"},
	} {
		out, took := e.timedExec(id, c.args...)
		if !strings.Contains(out, c.want) {
			t.Errorf("%v: %q, want %q", c.args, out, c.want)
		}
		// At once, not a timeout: a dropped connect would wait for
		// TCP's retries (over a minute); 10 s leaves room for the VM.
		if took > 10*time.Second {
			t.Errorf("%v took %v", c.args, took)
		}
	}
	// A bind the policy allows works: the listener waits until killed.
	if out, _ := e.timedExec(id, "timeout", "0.3", "nc", "-l", "-p", "83"); strings.Contains(out, "bind") {
		t.Errorf("bind of port 83: %q", out)
	}
	// Root in the container has no CAP_SYS_ADMIN: it cannot mount the
	// cgroup v2 hierarchy (to move out of the cgroup) nor get at the
	// programs; the policy holds after it tried.
	if out, _ := e.timedExec(id, "mount", "-t", "cgroup2", "none", "/dev"); !strings.Contains(out, "denied") && !strings.Contains(out, "not permitted") {
		t.Errorf("mount of cgroup2 in the container: %q", out)
	}
	if out, _ := e.timedExec(id, "nc", "127.0.0.1", "81"); !strings.Contains(out, "Operation not permitted") {
		t.Errorf("after the escape attempt: %q", out)
	}
	e.mustLkc("delete", "-f", id)
}

// TestNetPolicyBadAnnotation: a policy lkc cannot read fails create in one
// line naming the annotation and leaves nothing.
func TestNetPolicyBadAnnotation(t *testing.T) {
	e := newEnv(t)
	for _, v := range []string{"deny connect 10.0.0.300", "deny listen any", "allow connect any port 0", "default maybe"} {
		b := e.bundle([]string{"true"}, netPolicy(v))
		id := e.id()
		e.failLkc(`^lkc: run: annotation org.lkc.net-policy: `, "run", "--bundle", b, id)
		e.assertIDGone(id)
	}
}

// TestNetPolicyCheckpointRestore: after checkpoint and restore, the
// restored processes (a loop trying a denied connect) and exec'd ones are
// still refused.
func TestNetPolicyCheckpointRestore(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	loop := `i=0; while true; do i=$((i+1)); echo "$i $(nc 127.0.0.1 81 2>&1)" > /dev/shm/last; sleep 0.05; done`
	b := e.bundle([]string{"sh", "-c", loop}, netPolicy("deny connect any port 81"))
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", b, id)
	// The loop's count and message; the file is empty between the
	// shell's truncation and its write, so an empty read is retried.
	last := func() (int, string) {
		for try := 0; ; try++ {
			out, _ := e.timedExec(id, "cat", "/dev/shm/last")
			n, rest, _ := strings.Cut(strings.TrimSpace(out), " ")
			if i, err := strconv.Atoi(n); err == nil || try == 100 {
				return i, rest
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitAfter := func(after int) (int, string) {
		for try := 0; try < 200; try++ {
			if i, msg := last(); i > after+1 {
				return i, msg
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("the loop did not go past %d", after)
		return 0, ""
	}
	_, msg := waitAfter(0)
	if !strings.Contains(msg, "Operation not permitted") {
		t.Fatalf("before the checkpoint: %q", msg)
	}
	images := filepath.Join(t.TempDir(), "images")
	e.mustLkc("checkpoint", "--image-path", images, id)
	e.mustLkc("restore", "-d", "--bundle", b, "--image-path", images, id)
	i, _ := last()
	if _, msg = waitAfter(i); !strings.Contains(msg, "Operation not permitted") {
		t.Errorf("the restored loop's connect: %q", msg)
	}
	if out, _ := e.timedExec(id, "nc", "127.0.0.1", "81"); !strings.Contains(out, "Operation not permitted") {
		t.Errorf("exec'd connect after restore: %q", out)
	}
	e.mustLkc("delete", "-f", id)
}

// TestNetPolicyV6OnlyBind binds IPv6 sockets in a container whose policy
// denies binding 127.0.0.1 and ::1 on one port each: :: on a v6-only
// socket (IPV6_V6ONLY), which listens on IPv6 alone, is judged by the
// IPv6 rule alone; :: on a dual-stack socket, which listens on IPv4 too,
// by both; an IPv4-mapped address, whatever the option, as the IPv4
// address it maps.
func TestNetPolicyV6OnlyBind(t *testing.T) {
	e := newEnv(t)
	bin := testdataBinary(t, "bindv6")
	b := e.bundle([]string{"sleep", "100"}, func(s *specs.Spec) {
		netPolicy("deny bind 127.0.0.1 port 84, deny bind ::1 port 85")(s)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: filepath.Dir(bin), Options: []string{"bind", "ro"}})
	})
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", b, id)
	defer e.mustLkc("delete", "-f", id)
	e.mustLkc("exec", id, "ip", "link", "set", "lo", "up")
	if out, _ := e.timedExec(id, "/mnt/bindv6", "dual", "::", "86"); strings.Contains(out, "address family not supported") {
		t.Skip("no IPv6 in the container")
	}
	eperm, v6onlyAny := "operation not permitted", "ok"
	lockdown, _ := os.ReadFile("/sys/kernel/security/lockdown")
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil || strings.Contains(string(lockdown), "[confidentiality]") {
		v6onlyAny = eperm // the programs cannot read IPV6_V6ONLY: every :: is dual-stack
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"v6only", "::", "84"}, v6onlyAny},
		{[]string{"dual", "::", "84"}, eperm},
		{[]string{"v6only", "::", "85"}, eperm},
		{[]string{"dual", "::", "85"}, eperm},
		{[]string{"v6only", "::", "86"}, "ok"},
		{[]string{"dual", "::", "86"}, "ok"},
		{[]string{"dual", "::ffff:127.0.0.1", "84"}, eperm},
		{[]string{"v6only", "::ffff:127.0.0.1", "84"}, eperm},
		{[]string{"dual", "::ffff:0.0.0.0", "84"}, eperm},
		{[]string{"dual", "::ffff:127.0.0.1", "85"}, "ok"},
		{[]string{"v6only", "::ffff:127.0.0.1", "85"}, "invalid argument"}, // the kernel's: a v6-only socket binds no IPv4 address
	} {
		out, _ := e.timedExec(id, append([]string{"/mnt/bindv6"}, c.args...)...)
		if strings.TrimSpace(out) != c.want {
			t.Errorf("bindv6 %v: %q, want %q", c.args, out, c.want)
		}
	}
}
