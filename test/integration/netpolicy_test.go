package integration

import (
	"path/filepath"
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
// their neighbours do not, over IPv4 and an IPv4-mapped IPv6 address, and
// that root there cannot reach the cgroup v2 hierarchy to escape the
// programs.
func TestNetPolicyRefusesAtOnce(t *testing.T) {
	e := newEnv(t)
	// The container's own process tries first, before lo is up.
	init := "nc 127.0.0.1 81 2>/dev/shm/init.err; exec sleep 100"
	b := e.bundle([]string{"sh", "-c", init}, netPolicy("deny connect 127.0.0.0/8 port 81, deny bind any port 82"))
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
		{[]string{"nc", "127.0.0.1", "80"}, "Connection refused"},
		{[]string{"timeout", "2", "nc", "-l", "-p", "82"}, "Operation not permitted"},
	} {
		out, took := e.timedExec(id, c.args...)
		if !strings.Contains(out, c.want) {
			t.Errorf("%v: %q, want %q", c.args, out, c.want)
		}
		if took > 2*time.Second {
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

// TestNetPolicyCheckpointRefused: a restore would not re-attach the
// policy, so checkpoint refuses such a container in one line and leaves
// it running.
func TestNetPolicyCheckpointRefused(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	b := e.bundle([]string{"sleep", "100"}, netPolicy("deny connect any port 81"))
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", b, id)
	images := filepath.Join(t.TempDir(), "images")
	e.failLkc(`^lkc: checkpoint: .*annotation org.lkc.net-policy: a restore does not re-attach the policy`, "checkpoint", "--image-path", images, id)
	if st := e.state(id); st["status"] != "running" {
		t.Fatalf("after the refused checkpoint: %v", st["status"])
	}
	e.mustLkc("delete", "-f", id)
}
