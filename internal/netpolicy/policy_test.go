package netpolicy

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/testutil"
)

func TestParse(t *testing.T) {
	p, err := Parse("allow connect 10.1.2.3, deny connect 10.0.0.0/8 port 80-89, deny bind any port 22, allow connect fd00::/8 port 443, default deny")
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{Allow: true, Hook: Connect, Prefix: netip.MustParsePrefix("10.1.2.3/32")},
		{Hook: Connect, Prefix: netip.MustParsePrefix("10.0.0.0/8"), PortLo: 80, PortHi: 89},
		{Hook: Bind, PortLo: 22, PortHi: 22},
		{Allow: true, Hook: Connect, Prefix: netip.MustParsePrefix("fd00::/8"), PortLo: 443, PortHi: 443},
	}
	if len(p.Rules) != len(want) || p.DefaultAllow {
		t.Fatalf("got %+v", p)
	}
	for i := range want {
		if p.Rules[i] != want[i] {
			t.Errorf("rule %d: %+v, want %+v", i, p.Rules[i], want[i])
		}
	}
	if p, err := Parse("deny connect 10.0.0.1/8"); err != nil || p.Rules[0].Prefix.String() != "10.0.0.0/8" || !p.DefaultAllow {
		t.Errorf("a prefix with host bits: %+v, %v", p, err)
	}
	for v, want := range map[string]string{
		"deny connect ::ffff:10.1.2.3":       "10.1.2.3/32",
		"deny connect ::ffff:10.1.2.3/112":   "10.1.0.0/16",
		"deny connect ::ffff:0:0/96":         "0.0.0.0/0",
		"deny connect ::ffff:0:0/80":         "::/80",
		"deny connect 2001:db8::ffff:0:0/96": "2001:db8::ffff:0:0/96",
	} {
		if p, err := Parse(v); err != nil || p.Rules[0].Prefix.String() != want {
			t.Errorf("%q: %+v, %v; want prefix %s", v, p, err, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for v, want := range map[string]string{
		"":                           "empty rule",
		"deny connect":               "use allow|deny",
		"permit connect any":         `"permit" is not allow or deny`,
		"deny listen any":            `"listen" is not connect or bind`,
		"deny connect 10.0.0.300":    "not an address",
		"deny connect 10.0.0.0/33":   "not an address prefix",
		"deny connect any port 0":    "use a port 1-65535",
		"deny connect any port 9-2":  "use a port 1-65535",
		"deny connect any ports 9":   "use allow|deny",
		"default allow,default deny": `use one "default allow"`,
	} {
		_, err := Parse(v)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "annotation org.lkc.net-policy: ") {
			t.Errorf("%q: %v, want %q", v, err, want)
		}
	}
}

func TestCheckHost(t *testing.T) {
	saved := hybridUnified
	t.Cleanup(func() { hybridUnified = saved })
	hybridUnified = t.TempDir() // v1 only: no cgroup.controllers there
	if err := CheckHost(""); err == nil || !strings.Contains(err.Error(), "needs a cgroup v2 hierarchy") {
		t.Errorf("pure v1: %v", err)
	}
	if err := CheckHost("/sys/fs/cgroup/x"); err != nil {
		t.Errorf("v2: %v", err)
	}
	os.WriteFile(filepath.Join(hybridUnified, "cgroup.controllers"), nil, 0o644)
	if err := CheckHost(""); err != nil {
		t.Errorf("hybrid: %v", err)
	}
}

// TestProgramsLoad has the kernel's verifier accept the programs of a
// policy with every kind of rule, for each hook, the bind6 one reading
// IPV6_V6ONLY too (where the kernel's BTF says it is) and the post-bind
// one, and checks that their fds are close-on-exec.
func TestProgramsLoad(t *testing.T) {
	testutil.RequiresRoot(t)
	p, err := Parse("allow connect 10.1.2.3, deny connect 10.0.0.0/8 port 80-89, deny bind any port 22, allow bind ::1, deny bind 10.0.0.0/8 port 80, deny connect fd00::/8 port 443, default deny")
	if err != nil {
		t.Fatal(err)
	}
	load := func(at attachType, prog []insn) {
		t.Helper()
		code, err := assemble(prog)
		if err != nil {
			t.Fatal(err)
		}
		fd, err := loadProg(uint32(at), code)
		if err != nil {
			t.Fatalf("%v: %v", at, err)
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		unix.Close(fd)
		if err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("%v: fd flags %#x, %v: not close-on-exec", at, flags, err)
		}
	}
	for _, hook := range []Hook{Connect, Bind} {
		for fam, at := range hooks[hook] {
			load(at, p.compile(hook, fam == 1, nil))
		}
	}
	bit, err := v6onlyBit()
	if err != nil {
		t.Skipf("no IPV6_V6ONLY to read: %v", err)
	}
	load(unix.BPF_CGROUP_INET6_BIND, p.compile(Bind, true, &bit))
	load(unix.BPF_CGROUP_INET6_POST_BIND, p.postBind6(bit))
}

// TestVerifierRefusal: a program the verifier refuses fails to load with
// the verifier's reason in the error.
func TestVerifierRefusal(t *testing.T) {
	testutil.RequiresRoot(t)
	// A load past the end of struct bpf_sock_addr.
	code, err := assemble([]insn{loadWord(r0, r1, 4096), exit()})
	if err != nil {
		t.Fatal(err)
	}
	fd, err := loadProg(unix.BPF_CGROUP_INET4_CONNECT, code)
	if err == nil {
		unix.Close(fd)
		t.Fatal("loaded")
	}
	if !strings.Contains(err.Error(), "verifier: invalid bpf_context access") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q, want the verifier's reason on one line", err)
	}
	if testing.Verbose() {
		t.Log(err)
	}
}

// TestUnspecified: which unspecified addresses a rule decides other than
// as written: a connect rule as the loopback; a deny bind rule always,
// and :: for IPv4 rules too on a dual-stack socket (it listens on IPv4
// unless IPV6_V6ONLY); an allow bind rule never.
func TestUnspecified(t *testing.T) {
	any4, any6 := netip.IPv4Unspecified(), netip.IPv6Unspecified()
	for _, c := range []struct {
		rule string
		v6   bool
		want []special
	}{
		{"deny connect 127.0.0.0/8", true, []special{{any4, true, false}}},
		{"allow connect 0.0.0.0/8", false, []special{{any4, false, false}}},
		{"deny connect ::/0", true, nil},
		{"deny bind 127.0.0.1", false, []special{{any4, true, false}}},
		{"deny bind 127.0.0.1", true, []special{{any4, true, false}, {any6, true, true}}},
		{"deny bind 0.0.0.0/8", true, []special{{any6, true, true}}},
		{"deny bind ::1", true, []special{{any6, true, false}}},
		{"deny bind ::/0", true, nil},
		{"deny bind any", true, nil},
		{"allow bind 127.0.0.1", true, nil},
		{"allow bind ::1", true, nil},
	} {
		p, err := Parse(c.rule)
		if err != nil {
			t.Fatal(err)
		}
		r := p.Rules[0]
		if got := unspecified(r, r.Hook, c.v6); !slices.Equal(got, c.want) {
			t.Errorf("%q v6 %v: %v, want %v", c.rule, c.v6, got, c.want)
		}
	}
}
