package netpolicy

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

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
// policy with every kind of rule, for each hook.
func TestProgramsLoad(t *testing.T) {
	testutil.RequiresRoot(t)
	p, err := Parse("allow connect 10.1.2.3, deny connect 10.0.0.0/8 port 80-89, deny bind any port 22, allow bind ::1, deny connect fd00::/8 port 443, default deny")
	if err != nil {
		t.Fatal(err)
	}
	for _, hook := range []Hook{Connect, Bind} {
		for fam, at := range hooks[hook] {
			prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.CGroupSockAddr, AttachType: at, Instructions: p.compile(hook, fam == 1), License: "GPL"})
			if err != nil {
				t.Fatalf("%v: %v", at, err)
			}
			prog.Close()
		}
	}
}
