package config

import (
	"errors"
	"fmt"
)

// Seccomp is linux.seccomp, validated: actions, operators and architectures
// are spelled as libseccomp spells them (lower case, without the SCMP_
// prefixes), so internal/seccomp maps them without another check. Syscall
// names are not checked: a name the running architecture lacks is skipped
// when the filter is built, as runc does.
type Seccomp struct {
	// DefaultAction is one of SeccompActions; DefaultErrnoRet is the errno
	// of "errno" and "trace" (nil: EPERM).
	DefaultAction   string  `json:"defaultAction"`
	DefaultErrnoRet *uint32 `json:"defaultErrnoRet,omitempty"`
	// Architectures are added to the native one, libseccomp names ("x86").
	Architectures []string `json:"architectures,omitempty"`
	// Log, SpecAllow and WaitKillableRecv are SECCOMP_FILTER_FLAG_LOG,
	// _SPEC_ALLOW and _WAIT_KILLABLE_RECV. TSYNC is always set.
	Log              bool `json:"log,omitempty"`
	SpecAllow        bool `json:"specAllow,omitempty"`
	WaitKillableRecv bool `json:"waitKillableRecv,omitempty"`
	// ListenerPath is the unix socket init sends the notify fd to (with
	// the container's state and ListenerMetadata) when a rule says
	// "notify"; it is a host path, dialled by the runtime.
	ListenerPath     string        `json:"listenerPath,omitempty"`
	ListenerMetadata string        `json:"listenerMetadata,omitempty"`
	Syscalls         []SeccompRule `json:"syscalls,omitempty"`
}

// SeccompActions are the actions a Seccomp may name.
var SeccompActions = []string{
	"kill", "kill_process", "kill_thread", "trap", "errno", "trace", "allow", "log", "notify",
}

// SeccompOps are the argument comparisons a SeccompArg may name.
var SeccompOps = []string{"ne", "lt", "le", "eq", "ge", "gt", "masked_eq"}

// SeccompRule applies Action to the syscalls Names when all Args match.
type SeccompRule struct {
	Names    []string     `json:"names"`
	Action   string       `json:"action"`
	ErrnoRet *uint32      `json:"errnoRet,omitempty"`
	Args     []SeccompArg `json:"args,omitempty"`
}

// SeccompArg compares syscall argument Index (0-5) with Value; masked_eq
// compares (arg & Value) with ValueTwo.
type SeccompArg struct {
	Index    uint   `json:"index"`
	Value    uint64 `json:"value"`
	ValueTwo uint64 `json:"valueTwo,omitempty"`
	Op       string `json:"op"`
}

// NotifyUsed reports whether a rule or the default action is "notify".
func (s *Seccomp) NotifyUsed() bool {
	if s.DefaultAction == "notify" {
		return true
	}
	for _, r := range s.Syscalls {
		if r.Action == "notify" {
			return true
		}
	}
	return false
}

// WithSysinfoNotify returns s with sysinfo(2) sent to the agent listening
// at path (lkc daemon's seccomp.sock), for a container whose machine view
// is virtual; s itself is not changed. No profile: a filter of its own that
// allows everything else. A profile that already decides sysinfo (a rule
// naming it other than an unconditional allow, or a default that is not
// allow) keeps its decision: sysinfo then stays what the profile says. A
// profile with its own listener is refused: a task can have only one
// filter with a listener, so lkc's agent and the user's cannot both serve.
func WithSysinfoNotify(s *Seccomp, path, metadata string) (*Seccomp, error) {
	notify := SeccompRule{Names: []string{"sysinfo"}, Action: "notify"}
	if s == nil {
		return &Seccomp{DefaultAction: "allow", ListenerPath: path, ListenerMetadata: metadata,
			Syscalls: []SeccompRule{notify}}, nil
	}
	if s.ListenerPath != "" {
		return nil, fmt.Errorf("linux.seccomp.listenerPath %s: the container's virtual machine view needs lkc's seccomp agent for sysinfo, and a process can have only one seccomp listener", s.ListenerPath)
	}
	out := *s
	out.Syscalls = nil
	allowed := s.DefaultAction == "allow"
	for _, r := range s.Syscalls {
		if !names(r, "sysinfo") {
			out.Syscalls = append(out.Syscalls, r)
			continue
		}
		if r.Action != "allow" || len(r.Args) > 0 {
			return s, nil
		}
		allowed = true
		if r.Names = without(r.Names, "sysinfo"); len(r.Names) > 0 {
			out.Syscalls = append(out.Syscalls, r)
		}
	}
	if !allowed {
		return s, nil
	}
	out.Syscalls = append(out.Syscalls, notify)
	out.ListenerPath, out.ListenerMetadata = path, metadata
	return &out, nil
}

// WithoutSysinfoNotify returns s, a profile WithSysinfoNotify made, with
// sysinfo(2) left to the kernel and no listener: what an lkc exec loads
// when lkc daemon's agent cannot be had, so that the process runs and its
// sysinfo shows the host rather than the exec failing. s itself is not
// changed. A profile that notifies anything else is refused.
func WithoutSysinfoNotify(s *Seccomp) (*Seccomp, error) {
	out := *s
	out.Syscalls = make([]SeccompRule, 0, len(s.Syscalls))
	for _, r := range s.Syscalls {
		if r.Action == "notify" {
			if len(r.Names) != 1 || r.Names[0] != "sysinfo" || len(r.Args) > 0 {
				return nil, fmt.Errorf("linux.seccomp: rule %v notifies more than sysinfo", r.Names)
			}
			r.Action = "allow"
		}
		out.Syscalls = append(out.Syscalls, r)
	}
	if out.DefaultAction == "notify" {
		return nil, errors.New("linux.seccomp: defaultAction notify is not lkc's sysinfo rule")
	}
	out.ListenerPath, out.ListenerMetadata = "", ""
	return &out, nil
}

func names(r SeccompRule, name string) bool {
	for _, n := range r.Names {
		if n == name {
			return true
		}
	}
	return false
}

func without(list []string, name string) []string {
	var out []string
	for _, n := range list {
		if n != name {
			out = append(out, n)
		}
	}
	return out
}
