package spec

import (
	"fmt"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/config"
)

// seccompArchs maps the runtime-spec's architecture names to libseccomp's.
var seccompArchs = map[specs.Arch]string{
	specs.ArchX86: "x86", specs.ArchX86_64: "amd64", specs.ArchX32: "x32",
	specs.ArchARM: "arm", specs.ArchAARCH64: "arm64",
	specs.ArchMIPS: "mips", specs.ArchMIPS64: "mips64", specs.ArchMIPS64N32: "mips64n32",
	specs.ArchMIPSEL: "mipsel", specs.ArchMIPSEL64: "mipsel64", specs.ArchMIPSEL64N32: "mipsel64n32",
	specs.ArchPPC: "ppc", specs.ArchPPC64: "ppc64", specs.ArchPPC64LE: "ppc64le",
	specs.ArchS390: "s390", specs.ArchS390X: "s390x",
	specs.ArchPARISC: "parisc", specs.ArchPARISC64: "parisc64",
	specs.ArchRISCV64: "riscv64", specs.ArchLOONGARCH64: "loong64",
	specs.ArchM68K: "m68k", specs.ArchSH: "sh", specs.ArchSHEB: "sheb",
}

// seccompOps maps the runtime-spec's operators to config.SeccompOps.
var seccompOps = map[specs.LinuxSeccompOperator]string{
	specs.OpNotEqual: "ne", specs.OpLessThan: "lt", specs.OpLessEqual: "le",
	specs.OpEqualTo: "eq", specs.OpGreaterEqual: "ge", specs.OpGreaterThan: "gt",
	specs.OpMaskedEqual: "masked_eq",
}

// seccompFlags are the SECCOMP_FILTER_FLAG_* names lkc knows. TSYNC is
// accepted and always applied anyway: init is a multi-threaded Go process.
var seccompFlags = []specs.LinuxSeccompFlag{
	"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog,
	specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv,
}

const seccompActPrefix = "SCMP_ACT_"

func convertSeccomp(s *specs.Spec, c *config.Config) error {
	sc := s.Linux.Seccomp
	if sc == nil {
		return nil
	}
	def, err := seccompAction("linux.seccomp.defaultAction", sc.DefaultAction)
	if err != nil {
		return err
	}
	if def == "notify" {
		return invalid("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action")
	}
	defErrno, err := errnoRet("linux.seccomp.defaultErrnoRet", sc.DefaultErrnoRet)
	if err != nil {
		return err
	}
	out := &config.Seccomp{
		DefaultAction:    def,
		DefaultErrnoRet:  defErrno,
		ListenerPath:     sc.ListenerPath,
		ListenerMetadata: sc.ListenerMetadata,
	}
	for _, a := range sc.Architectures {
		name, ok := seccompArchs[a]
		if !ok {
			return invalid("linux.seccomp.architectures: unknown architecture %q", a)
		}
		out.Architectures = append(out.Architectures, name)
	}
	if err := seccompFlagsInto(sc.Flags, out); err != nil {
		return err
	}
	for i, sys := range sc.Syscalls {
		r, err := seccompRule(i, sys)
		if err != nil {
			return err
		}
		out.Syscalls = append(out.Syscalls, r)
	}
	if out.NotifyUsed() && out.ListenerPath == "" {
		return invalid("linux.seccomp: SCMP_ACT_NOTIFY needs a listenerPath")
	}
	if !out.NotifyUsed() && out.ListenerPath != "" {
		return invalid("linux.seccomp.listenerPath is set but no rule uses SCMP_ACT_NOTIFY")
	}
	c.Seccomp = out
	return nil
}

func seccompFlagsInto(flags []specs.LinuxSeccompFlag, out *config.Seccomp) error {
	for _, f := range flags {
		switch f {
		case "SECCOMP_FILTER_FLAG_TSYNC":
		case specs.LinuxSeccompFlagLog:
			out.Log = true
		case specs.LinuxSeccompFlagSpecAllow:
			out.SpecAllow = true
		case specs.LinuxSeccompFlagWaitKillableRecv:
			out.WaitKillableRecv = true
		default:
			return invalid("linux.seccomp.flags: unknown flag %q", f)
		}
	}
	return nil
}

func seccompRule(i int, sys specs.LinuxSyscall) (config.SeccompRule, error) {
	r := config.SeccompRule{Names: sys.Names}
	if len(sys.Names) == 0 {
		return r, invalid("linux.seccomp.syscalls[%d]: names is empty", i)
	}
	var err error
	if r.ErrnoRet, err = errnoRet(fmt.Sprintf("linux.seccomp.syscalls[%d].errnoRet", i), sys.ErrnoRet); err != nil {
		return r, err
	}
	act, err := seccompAction("linux.seccomp.syscalls[%d].action", sys.Action, i)
	if err != nil {
		return r, err
	}
	r.Action = act
	if act == "notify" {
		// Init itself makes these calls after loading the filter, before
		// anyone can answer a notification: it would hang.
		for _, n := range sys.Names {
			if n == "write" || n == "sendmsg" {
				return r, invalid("linux.seccomp.syscalls[%d]: SCMP_ACT_NOTIFY cannot be used for %s", i, n)
			}
		}
	}
	for j, a := range sys.Args {
		op, ok := seccompOps[a.Op]
		if !ok {
			return r, invalid("linux.seccomp.syscalls[%d].args[%d]: unknown operator %q", i, j, a.Op)
		}
		if a.Index > 5 {
			return r, invalid("linux.seccomp.syscalls[%d].args[%d]: index %d is not 0-5", i, j, a.Index)
		}
		r.Args = append(r.Args, config.SeccompArg{Index: a.Index, Value: a.Value, ValueTwo: a.ValueTwo, Op: op})
	}
	return r, nil
}

// seccompAction checks an SCMP_ACT_* name and returns it as config spells
// it; where is a format for the field, with args.
func seccompAction(where string, a specs.LinuxSeccompAction, args ...any) (string, error) {
	name := strings.ToLower(strings.TrimPrefix(string(a), seccompActPrefix))
	if strings.HasPrefix(string(a), seccompActPrefix) {
		for _, known := range config.SeccompActions {
			if name == known {
				return name, nil
			}
		}
	}
	return "", invalid(where+": unknown action %q", append(args, a)...)
}

// errnoRet checks an errno for SCMP_ACT_ERRNO and SCMP_ACT_TRACE: the
// kernel passes at most 4095 back.
func errnoRet(where string, e *uint) (*uint32, error) {
	if e == nil {
		return nil, nil
	}
	if *e > 4095 {
		return nil, invalid("%s: errno %d is over 4095", where, *e)
	}
	v := uint32(*e)
	return &v, nil
}

// seccompFeatures lists what `lkc features` reports about seccomp.
func seccompFeatures() (actions, ops, archs, flags []string) {
	for _, a := range config.SeccompActions {
		actions = append(actions, seccompActPrefix+strings.ToUpper(a))
	}
	for op := range seccompOps {
		ops = append(ops, string(op))
	}
	for a := range seccompArchs {
		archs = append(archs, string(a))
	}
	for _, f := range seccompFlags {
		flags = append(flags, string(f))
	}
	sort.Strings(ops)
	sort.Strings(archs)
	return actions, ops, archs, flags
}
