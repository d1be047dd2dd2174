package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestWithSysinfoNotify(t *testing.T) {
	notify := SeccompRule{Names: []string{"sysinfo"}, Action: "notify"}
	deny := SeccompRule{Names: []string{"mkdir"}, Action: "errno"}
	for _, c := range []struct {
		name    string
		in      *Seccomp
		rules   []SeccompRule // nil: the profile is returned unchanged
		noAgent bool
	}{
		{name: "no profile", in: nil, rules: []SeccompRule{notify}},
		{name: "allow list", in: &Seccomp{DefaultAction: "allow", Syscalls: []SeccompRule{deny}},
			rules: []SeccompRule{deny, notify}},
		{name: "explicit allow", in: &Seccomp{DefaultAction: "errno", Syscalls: []SeccompRule{
			{Names: []string{"read", "sysinfo"}, Action: "allow"}}},
			rules: []SeccompRule{{Names: []string{"read"}, Action: "allow"}, notify}},
		{name: "denied by default", in: &Seccomp{DefaultAction: "errno"}, noAgent: true},
		{name: "denied by a rule", in: &Seccomp{DefaultAction: "allow", Syscalls: []SeccompRule{
			{Names: []string{"sysinfo"}, Action: "errno"}}}, noAgent: true},
	} {
		var before Seccomp
		if c.in != nil {
			before = *c.in
		}
		out, err := WithSysinfoNotify(c.in, "/run/lkcd/seccomp.sock", "/run/lkc")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if c.noAgent {
			if out != c.in || out.ListenerPath != "" {
				t.Errorf("%s: %+v, want the profile unchanged (sysinfo stays denied)", c.name, out)
			}
			continue
		}
		if !reflect.DeepEqual(out.Syscalls, c.rules) || out.ListenerPath != "/run/lkcd/seccomp.sock" ||
			out.ListenerMetadata != "/run/lkc" || !out.NotifyUsed() {
			t.Errorf("%s: %+v, want rules %+v and the agent's listener", c.name, out, c.rules)
		}
		if c.in != nil && !reflect.DeepEqual(*c.in, before) {
			t.Errorf("%s: the given profile was changed: %+v", c.name, *c.in)
		}
	}
}

func TestWithSysinfoNotifyRefusesOwnListener(t *testing.T) {
	in := &Seccomp{DefaultAction: "allow", ListenerPath: "/run/agent.sock",
		Syscalls: []SeccompRule{{Names: []string{"mkdir"}, Action: "notify"}}}
	_, err := WithSysinfoNotify(in, "/run/lkcd/seccomp.sock", "")
	if err == nil || !strings.Contains(err.Error(), "/run/agent.sock") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("a profile with its own listener: %v, want one line naming its listenerPath", err)
	}
}

func TestWithoutSysinfoNotify(t *testing.T) {
	deny := SeccompRule{Names: []string{"mkdir"}, Action: "errno"}
	in, err := WithSysinfoNotify(&Seccomp{DefaultAction: "allow", Syscalls: []SeccompRule{deny}}, "/run/lkcd/seccomp.sock", "/run/lkc")
	if err != nil {
		t.Fatal(err)
	}
	out, err := WithoutSysinfoNotify(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []SeccompRule{deny, {Names: []string{"sysinfo"}, Action: "allow"}}
	if !reflect.DeepEqual(out.Syscalls, want) || out.ListenerPath != "" || out.ListenerMetadata != "" || out.NotifyUsed() {
		t.Errorf("%+v, want rules %+v and no listener", out, want)
	}
	if !in.NotifyUsed() || in.ListenerPath == "" {
		t.Errorf("the given profile was changed: %+v", in)
	}
	other := &Seccomp{DefaultAction: "allow", ListenerPath: "/x", Syscalls: []SeccompRule{{Names: []string{"mkdir"}, Action: "notify"}}}
	if _, err := WithoutSysinfoNotify(other); err == nil {
		t.Errorf("a profile notifying mkdir: no error")
	}
}
