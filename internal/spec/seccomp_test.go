package spec

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/config"
)

func TestSeccompConverts(t *testing.T) {
	s := goodSpec(t)
	one, eperm := uint(1), uint32(1)
	s.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &one,
		Architectures:   []specs.Arch{specs.ArchX86_64, specs.ArchX86},
		Flags:           []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow},
		ListenerPath:    "/run/agent.sock", ListenerMetadata: "m",
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "no_such_call"}, Action: specs.ActAllow},
			{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: &one,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xff, ValueTwo: 8, Op: specs.OpMaskedEqual}}},
			{Names: []string{"mkdir"}, Action: specs.ActNotify},
			{Names: []string{"uname"}, Action: specs.ActKill},
		},
	}
	c, err := Convert(s, "ctr", "/bundle")
	if err != nil {
		t.Fatal(err)
	}
	want := &config.Seccomp{
		DefaultAction: "errno", DefaultErrnoRet: &eperm, Architectures: []string{"amd64", "x86"},
		Log: true, SpecAllow: true, ListenerPath: "/run/agent.sock", ListenerMetadata: "m",
		Syscalls: []config.SeccompRule{
			{Names: []string{"read", "no_such_call"}, Action: "allow"},
			{Names: []string{"personality"}, Action: "errno", ErrnoRet: &eperm,
				Args: []config.SeccompArg{{Index: 0, Value: 0xff, ValueTwo: 8, Op: "masked_eq"}}},
			{Names: []string{"mkdir"}, Action: "notify"},
			{Names: []string{"uname"}, Action: "kill"},
		},
	}
	if !reflect.DeepEqual(c.Seccomp, want) {
		t.Errorf("converted seccomp\n got %+v\nwant %+v", c.Seccomp, want)
	}
}

func TestSeccompNoneByDefault(t *testing.T) {
	c, err := Convert(goodSpec(t), "ctr", "/bundle")
	if err != nil {
		t.Fatal(err)
	}
	if c.Seccomp != nil || Default().Linux.Seccomp != nil {
		t.Errorf("the default spec has a seccomp profile: %+v", c.Seccomp)
	}
}

func TestSeccompRefused(t *testing.T) {
	big := uint(4096)
	allow := func(mutate func(*specs.LinuxSeccomp)) *specs.LinuxSeccomp {
		sc := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}}}
		mutate(sc)
		return sc
	}
	cases := []struct {
		sc   *specs.LinuxSeccomp
		want string
	}{
		{allow(func(s *specs.LinuxSeccomp) { s.DefaultAction = "SCMP_ACT_NOPE" }), `defaultAction: unknown action "SCMP_ACT_NOPE"`},
		{allow(func(s *specs.LinuxSeccomp) { s.DefaultAction = "ALLOW" }), `unknown action "ALLOW"`},
		{allow(func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = "SCMP_ACT_BOOM" }), `syscalls\[0\].action: unknown action "SCMP_ACT_BOOM"`},
		{allow(func(s *specs.LinuxSeccomp) { s.Architectures = []specs.Arch{"SCMP_ARCH_VAX"} }), `unknown architecture "SCMP_ARCH_VAX"`},
		{allow(func(s *specs.LinuxSeccomp) { s.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_X"} }), `unknown flag "SECCOMP_FILTER_FLAG_X"`},
		{allow(func(s *specs.LinuxSeccomp) {
			s.Syscalls[0].Args = []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_ABOUT"}}
		}), `syscalls\[0\].args\[0\]: unknown operator "SCMP_CMP_ABOUT"`},
		{allow(func(s *specs.LinuxSeccomp) {
			s.Syscalls[0].Args = []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}
		}), `index 6 is not 0-5`},
		{allow(func(s *specs.LinuxSeccomp) { s.Syscalls[0].Names = nil }), `syscalls\[0\]: names is empty`},
		{allow(func(s *specs.LinuxSeccomp) { s.Syscalls[0].ErrnoRet = &big }), `errno 4096 is over 4095`},
		{allow(func(s *specs.LinuxSeccomp) { s.DefaultAction = specs.ActNotify; s.ListenerPath = "/x" }), `cannot be the default action`},
		{allow(func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = specs.ActNotify }), `needs a listenerPath`},
		{allow(func(s *specs.LinuxSeccomp) { s.ListenerPath = "/x" }), `no rule uses SCMP_ACT_NOTIFY`},
		{allow(func(s *specs.LinuxSeccomp) {
			s.ListenerPath = "/x"
			s.Syscalls[0] = specs.LinuxSyscall{Names: []string{"sendmsg"}, Action: specs.ActNotify}
		}), `SCMP_ACT_NOTIFY cannot be used for sendmsg`},
	}
	for _, tc := range cases {
		s := goodSpec(t)
		s.Linux.Seccomp = tc.sc
		_, err := Convert(s, "ctr", "/bundle")
		if !errors.Is(err, ErrInvalid) || !matches(tc.want, err.Error()) || strings.Contains(err.Error(), "\n") {
			t.Errorf("want a one-line error matching %q, got %v", tc.want, err)
		}
	}
}

func TestSeccompFeatures(t *testing.T) {
	sc := Features().Linux.Seccomp
	if sc == nil || sc.Enabled == nil || !*sc.Enabled {
		t.Fatalf("features: seccomp not enabled: %+v", sc)
	}
	for _, want := range []struct {
		list []string
		item string
	}{
		{sc.Actions, "SCMP_ACT_NOTIFY"}, {sc.Actions, "SCMP_ACT_KILL_PROCESS"},
		{sc.Operators, "SCMP_CMP_MASKED_EQ"}, {sc.Archs, "SCMP_ARCH_X86_64"},
		{sc.KnownFlags, "SECCOMP_FILTER_FLAG_LOG"},
	} {
		found := false
		for _, x := range want.list {
			found = found || x == want.item
		}
		if !found {
			t.Errorf("features: %s missing from %v", want.item, want.list)
		}
	}
}
