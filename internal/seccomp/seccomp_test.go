package seccomp

import (
	"bytes"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// pfc builds c's filter and returns it as libseccomp's readable pseudo-code.
func pfc(t *testing.T, c *config.Seccomp) string {
	t.Helper()
	f, err := build(c)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	defer f.Release()
	out, err := os.CreateTemp(t.TempDir(), "pfc")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := f.ExportPFC(out); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(out.Name())
	return string(data)
}

func TestBuildRules(t *testing.T) {
	thirteen := uint32(13)
	got := pfc(t, &config.Seccomp{
		DefaultAction: "allow",
		Syscalls: []config.SeccompRule{
			{Names: []string{"mkdir", "no_such_call"}, Action: "errno", ErrnoRet: &thirteen},
			{Names: []string{"getpid"}, Action: "allow"}, // the default: skipped
			{Names: []string{"personality"}, Action: "kill_process",
				Args: []config.SeccompArg{{Index: 0, Value: 8, Op: "eq"}}},
		},
	})
	for _, want := range []string{"if ($syscall == 83)", "action ERRNO(13)", "if ($a0.hi32 == 0)", "action KILL_PROCESS", "action ALLOW"} {
		if !strings.Contains(got, want) {
			t.Errorf("filter lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "$syscall == 39") {
		t.Errorf("a rule with the default action went in:\n%s", got)
	}
}

func TestBuildSameArgTwiceIsOr(t *testing.T) {
	got := pfc(t, &config.Seccomp{
		DefaultAction: "allow",
		Syscalls: []config.SeccompRule{{Names: []string{"personality"}, Action: "errno",
			Args: []config.SeccompArg{{Index: 0, Value: 8, Op: "eq"}, {Index: 0, Value: 9, Op: "eq"}}}},
	})
	if !strings.Contains(got, "== 8") || !strings.Contains(got, "== 9") {
		t.Errorf("want two rules, for 8 and 9:\n%s", got)
	}
}

func TestBuildRefuses(t *testing.T) {
	for _, c := range []*config.Seccomp{
		{DefaultAction: "nope"},
		{DefaultAction: "allow", Architectures: []string{"vax"}},
		{DefaultAction: "allow", Syscalls: []config.SeccompRule{{Names: []string{"read"}, Action: "bad"}}},
		{DefaultAction: "allow", Syscalls: []config.SeccompRule{{Names: []string{"read"}, Action: "errno",
			Args: []config.SeccompArg{{Op: "about"}}}}},
	} {
		if f, err := build(c); err == nil {
			f.Release()
			t.Errorf("build(%+v) succeeded", c)
		}
	}
}

func TestProgram(t *testing.T) {
	c := &config.Seccomp{DefaultAction: "allow", Log: true, SpecAllow: true,
		Syscalls: []config.SeccompRule{{Names: []string{"mkdir"}, Action: "errno"}}}
	prog, flags, err := Program(c)
	if err != nil {
		t.Fatal(err)
	}
	// struct sock_filter is 8 bytes; the program checks the architecture,
	// the syscall number and returns: a handful of instructions at least.
	if len(prog) < 4*8 || len(prog)%8 != 0 {
		t.Errorf("program of %d bytes, want whole sock_filter instructions", len(prog))
	}
	if flags != unix.SECCOMP_FILTER_FLAG_LOG|unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW {
		t.Errorf("flags %#x, want LOG|SPEC_ALLOW", flags)
	}
	if _, _, err := Program(&config.Seccomp{DefaultAction: "bogus"}); err == nil {
		t.Error("a bad profile compiled")
	}
}

// TestSysinfoProgramIsLibseccomps: the program Program gives a container
// whose only rule sends sysinfo to the agent, without libseccomp, is the
// one libseccomp builds of it; a config with anything more is built by
// libseccomp.
func TestSysinfoProgramIsLibseccomps(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the prebuilt program is amd64's")
	}
	c, err := config.WithSysinfoNotify(nil, "/run/lkcd/seccomp.sock", "/run/lkc")
	if err != nil {
		t.Fatal(err)
	}
	if !sysinfoOnly(c) {
		t.Fatalf("%+v not recognised", c)
	}
	prog, flags, err := Program(c)
	if err != nil {
		t.Fatal(err)
	}
	want, wantFlags, err := libseccompProgram(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(prog, want) || flags != wantFlags {
		t.Errorf("prebuilt program %x flags %#x, libseccomp's %x flags %#x", prog, flags, want, wantFlags)
	}
	more := *c
	more.Architectures = []string{"x86"}
	other := *c
	other.Syscalls = []config.SeccompRule{{Names: []string{"sysinfo", "uname"}, Action: "notify"}}
	logged := *c
	logged.Log = true
	for _, c := range []*config.Seccomp{&more, &other, &logged} {
		if sysinfoOnly(c) {
			t.Errorf("%+v taken for the sysinfo-only filter", c)
		}
	}
}
