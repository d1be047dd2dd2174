package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// statusFields returns the named fields of /proc/self/status as the
// container printed them.
func statusFields(out string, names ...string) map[string]string {
	got := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		for _, n := range names {
			if k == n {
				got[n] = strings.TrimSpace(v)
			}
		}
	}
	return got
}

func capMask(caps ...int) string {
	var m uint64
	for _, c := range caps {
		m |= 1 << c
	}
	return fmt.Sprintf("%016x", m)
}

// Capability numbers from linux/capability.h.
const (
	capChown          = 0
	capDacOverride    = 1
	capKill           = 5
	capNetBindService = 10
	capNetRaw         = 13
	capSysChroot      = 18
	capAuditWrite     = 29
)

func TestProcessArgsEnvCwd(t *testing.T) {
	e := newEnv(t)
	out := e.mustRunOut([]string{"sh", "-c", `echo "$0|$1|$FOO|$HOME|$(pwd)"`, "a b", "c"}, func(s *specs.Spec) {
		s.Process.Env = append(s.Process.Env, "FOO=bar baz")
		s.Process.Cwd = "/tmp"
	})
	if out != "a b|c|bar baz|/root|/tmp" {
		t.Errorf("args, env, HOME from /etc/passwd, cwd: got %q", out)
	}
}

func TestProcessUser(t *testing.T) {
	e := newEnv(t)
	out := e.mustRunOut([]string{"sh", "-c", "id -u; id -g; grep -E '^(Uid|Gid|Groups):' /proc/self/status; echo $HOME"}, func(s *specs.Spec) {
		s.Process.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{2000, 3000}}
	})
	want := "1000\n1001\nUid:\t1000\t1000\t1000\t1000\nGid:\t1001\t1001\t1001\t1001\nGroups:\t2000 3000 \n/"
	if strings.TrimSpace(out) != strings.TrimSpace(want) {
		t.Errorf("user 1000:1001 groups 2000,3000: got\n%q\nwant\n%q", out, want)
	}
}

func TestProcessUmask(t *testing.T) {
	e := newEnv(t)
	for _, mask := range []uint32{0o027, 0o077} {
		m := mask
		out := e.mustRunOut([]string{"sh", "-c", "umask"}, func(s *specs.Spec) { s.Process.User.Umask = &m })
		if want := fmt.Sprintf("%04o", mask); out != want {
			t.Errorf("umask %s: got %q", want, out)
		}
	}
}

func TestProcessRlimits(t *testing.T) {
	e := newEnv(t)
	out := e.mustRunOut([]string{"sh", "-c", "ulimit -n; ulimit -Hn; ulimit -Sc; ulimit -Hc"}, func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{
			{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 1000},
			{Type: "RLIMIT_CORE", Soft: 0, Hard: 4096 * 1024},
		}
	})
	// busybox counts core size in 512-byte blocks.
	if got := strings.Fields(out); strings.Join(got, " ") != "512 1000 0 8192" {
		t.Errorf("rlimits NOFILE 512/1000, CORE 0/4M: got %q", out)
	}
}

func TestProcessDefaultCapabilities(t *testing.T) {
	e := newEnv(t)
	out := e.mustRunOut([]string{"cat", "/proc/self/status"}, nil)
	got := statusFields(out, "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
	def := capMask(capAuditWrite, capKill, capNetBindService)
	want := map[string]string{"CapInh": capMask(), "CapPrm": def, "CapEff": def, "CapBnd": def, "CapAmb": capMask()}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("default caps: %s %s, want %s", k, got[k], v)
		}
	}
}

func TestProcessAllCapabilitySets(t *testing.T) {
	e := newEnv(t)
	caps := &specs.LinuxCapabilities{
		Bounding:    []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_CHROOT"},
		Permitted:   []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"},
		Effective:   []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"},
		Inheritable: []string{"CAP_CHOWN", "CAP_NET_RAW"},
		Ambient:     []string{"CAP_NET_RAW"},
	}
	bnd := capMask(capChown, capDacOverride, capKill, capNetRaw, capSysChroot)
	inh := capMask(capChown, capNetRaw)
	amb := capMask(capNetRaw)
	prm := capMask(capChown, capKill, capNetRaw)
	cases := []struct {
		name string
		uid  uint32
		nnp  bool
		want map[string]string
	}{
		// A non-root process keeps across execve only its ambient set.
		{"uid1000", 1000, true, map[string]string{"CapBnd": bnd, "CapInh": inh, "CapAmb": amb, "CapPrm": amb, "CapEff": amb}},
		// Root with no_new_privs keeps exactly the permitted set.
		{"root", 0, true, map[string]string{"CapBnd": bnd, "CapInh": inh, "CapAmb": amb, "CapPrm": prm, "CapEff": prm}},
		// Root without it gains bounding | inheritable on execve (as under runc).
		{"root-privs", 0, false, map[string]string{"CapBnd": bnd, "CapInh": inh, "CapAmb": amb,
			"CapPrm": capMask(capChown, capDacOverride, capKill, capNetRaw, capSysChroot),
			"CapEff": capMask(capChown, capDacOverride, capKill, capNetRaw, capSysChroot)}},
	}
	for _, c := range cases {
		out := e.mustRunOut([]string{"cat", "/proc/self/status"}, func(s *specs.Spec) {
			s.Process.Capabilities = caps
			s.Process.User.UID = c.uid
			s.Process.NoNewPrivileges = c.nnp
		})
		got := statusFields(out, "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s: %s %s, want %s", c.name, k, got[k], v)
			}
		}
	}
}

func TestProcessNoNewPrivileges(t *testing.T) {
	e := newEnv(t)
	for _, nnp := range []bool{true, false} {
		out := e.mustRunOut([]string{"grep", "NoNewPrivs", "/proc/self/status"}, func(s *specs.Spec) {
			s.Process.NoNewPrivileges = nnp
		})
		want := "NoNewPrivs:\t0"
		if nnp {
			want = "NoNewPrivs:\t1"
		}
		if out != want {
			t.Errorf("noNewPrivileges %v: got %q, want %q", nnp, out, want)
		}
	}
}

func TestProcessOOMScoreAdj(t *testing.T) {
	e := newEnv(t)
	// Only raising: this machine's root lacks CAP_SYS_RESOURCE, which a
	// negative value needs.
	for _, adj := range []int{500, 1000} {
		a := adj
		out := e.mustRunOut([]string{"cat", "/proc/self/oom_score_adj"}, func(s *specs.Spec) { s.Process.OOMScoreAdj = &a })
		if out != fmt.Sprint(adj) {
			t.Errorf("oomScoreAdj %d: got %q", adj, out)
		}
	}
}

func TestProcessSysctl(t *testing.T) {
	e := newEnv(t)
	read := func(p string) string {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(data))
	}
	const fwd, ttl = "/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv4/ip_default_ttl"
	hostFwd, hostTTL := read(fwd), read(ttl)
	want := "1"
	if hostFwd == "1" {
		want = "0"
	}
	out := e.mustRunOut([]string{"cat", fwd, ttl}, func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": want, "net.ipv4.ip_default_ttl": "42"}
	})
	if got := strings.Fields(out); strings.Join(got, " ") != want+" 42" {
		t.Errorf("sysctl ip_forward=%s ip_default_ttl=42 inside: got %q", want, out)
	}
	if read(fwd) != hostFwd || read(ttl) != hostTTL {
		t.Errorf("the host's sysctls changed: ip_forward %s -> %s, ip_default_ttl %s -> %s", hostFwd, read(fwd), hostTTL, read(ttl))
	}
}

func TestProcessSysctlNotNamespacedRefused(t *testing.T) {
	e := newEnv(t)
	b := e.bundle([]string{"true"}, func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"vm.swappiness": "10"} })
	e.failLkc("not namespaced", "run", "--bundle", b, e.id())
}

func TestProcessHostnameDomainname(t *testing.T) {
	e := newEnv(t)
	out := e.mustRunOut([]string{"cat", "/proc/sys/kernel/hostname", "/proc/sys/kernel/domainname"}, func(s *specs.Spec) {
		s.Hostname, s.Domainname = "box1", "example.test"
	})
	if out != "box1\nexample.test" {
		t.Errorf("hostname box1, domainname example.test: got %q", out)
	}
}

func TestProcessMemoryLimit(t *testing.T) {
	e := newEnv(t)
	limit := int64(32 << 20)
	withLimit := func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	}
	// 8 MiB fits; 100 MiB does not: dd touches its whole buffer.
	out := e.mustRunOut([]string{"sh", "-c", "cat " + cgroupFile("memory", "memory.limit_in_bytes", "memory.max") + "; dd if=/dev/zero of=/dev/null bs=8M count=1 2>/dev/null && echo small-ok"}, withLimit)
	if out != "33554432\nsmall-ok" {
		t.Fatalf("memory limit 32 MiB, 8 MiB allocation: got %q", out)
	}
	r := e.run([]string{"dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"}, withLimit)
	if r.code != 137 {
		t.Errorf("allocating 100 MiB under a 32 MiB limit: want OOM kill (exit 137), got %v", r)
	}
}

func TestProcessPidsLimit(t *testing.T) {
	e := newEnv(t)
	// The shell is one of the 10; each sleep is one more. Builtins do not fork.
	script := `n=0; while [ $n -lt 15 ]; do sleep 30 & n=$((n+1)); echo $n; done`
	r := e.run([]string{"sh", "-c", script}, func(s *specs.Spec) {
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: 10}
	})
	lines := strings.Fields(r.stdout)
	if len(lines) == 0 || lines[len(lines)-1] != "9" || r.code == 0 || !strings.Contains(r.stderr, "fork") {
		t.Errorf("pids limit 10: want 9 background processes then a failed fork, got %v", r)
	}
}
