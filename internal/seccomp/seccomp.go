// Package seccomp turns a container's config.Seccomp into a BPF filter,
// through libseccomp (github.com/seccomp/libseccomp-golang), loads it, and
// hands a notify filter's fd to the config's listener.
//
// This is the one place besides internal/nsenter that uses cgo, against
// STYLE.md's rule: the seccomp issue asks for libseccomp explicitly, and it
// is what runc, crun and Podman use, so a profile behaves the same under
// lkc (syscall names per architecture, multi-arch filters, argument
// comparisons, the notify listener). libseccomp is linked statically (make
// lkc: Debian's source built with musl by scripts/install-libseccomp-musl.sh;
// a plain go build: Debian's libseccomp-dev); nothing here runs unless a
// config has linux.seccomp, so `run` without one pays nothing.
package seccomp

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"slices"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// Program builds c's filter as a BPF program (struct sock_filter array)
// and the SECCOMP_FILTER_FLAG_* flags to load it with (NEW_LISTENER when a
// rule uses "notify"), for a process that loads it itself with seccomp(2)
// (internal/nsenter/plan.c, in the constructor or Go's init). The program is
// built before it is needed: libseccomp allocates as it builds, and the
// process that loads it may by then live under the container's rlimits
// (an RLIMIT_AS below what the Go runtime has reserved fails every mmap).
func Program(c *config.Seccomp) ([]byte, uint, error) {
	if sysinfoOnly(c) {
		return sysinfoProgram, flags(c), nil
	}
	return libseccompProgram(c)
}

// libseccompProgram is Program through libseccomp.
func libseccompProgram(c *config.Seccomp) ([]byte, uint, error) {
	f, err := build(c)
	if err != nil {
		return nil, 0, err
	}
	defer f.Release()
	fd, err := unix.MemfdCreate("lkc-seccomp", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, 0, fmt.Errorf("memfd for the seccomp program: %w", err)
	}
	mem := os.NewFile(uintptr(fd), "lkc-seccomp")
	defer mem.Close()
	if err := f.ExportBPF(mem); err != nil {
		return nil, 0, fmt.Errorf("exporting the seccomp program: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, 0, fmt.Errorf("seccomp program: %w", err)
	}
	prog := make([]byte, st.Size)
	if _, err := mem.ReadAt(prog, 0); err != nil {
		return nil, 0, fmt.Errorf("reading the seccomp program: %w", err)
	}
	return prog, flags(c), nil
}

func flags(c *config.Seccomp) uint {
	var flags uint
	if c.Log {
		flags |= unix.SECCOMP_FILTER_FLAG_LOG
	}
	if c.SpecAllow {
		flags |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
	}
	if c.NotifyUsed() {
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
		if c.WaitKillableRecv {
			flags |= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
		}
	}
	return flags
}

// build makes the filter without loading it, so tests can inspect it.
func build(c *config.Seccomp) (*libseccomp.ScmpFilter, error) {
	def, err := action(c.DefaultAction, c.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		return nil, fmt.Errorf("creating a seccomp filter: %w", err)
	}
	if err := setup(f, c); err != nil {
		f.Release()
		return nil, err
	}
	for i, r := range c.Syscalls {
		if err := addRule(f, def, r); err != nil {
			f.Release()
			return nil, fmt.Errorf("seccomp rule %d (%v): %w", i, r.Names, err)
		}
	}
	return f, nil
}

// setup sets the architectures and the filter flags. no_new_privs stays as
// the process config says (libseccomp would set it by default).
func setup(f *libseccomp.ScmpFilter, c *config.Seccomp) error {
	for _, name := range c.Architectures {
		arch, err := libseccomp.GetArchFromString(name)
		if err != nil {
			return fmt.Errorf("seccomp architecture %q: %w", name, err)
		}
		if err := f.AddArch(arch); err != nil {
			return fmt.Errorf("adding seccomp architecture %s: %w", name, err)
		}
	}
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return fmt.Errorf("seccomp: clearing the no_new_privs attribute: %w", err)
	}
	flags := []struct {
		on   bool
		name string
		set  func(bool) error
	}{
		{c.Log, "SECCOMP_FILTER_FLAG_LOG", f.SetLogBit},
		{c.SpecAllow, "SECCOMP_FILTER_FLAG_SPEC_ALLOW", f.SetSSB},
		{c.WaitKillableRecv, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", f.SetWaitKill},
	}
	for _, fl := range flags {
		if !fl.on {
			continue
		}
		if err := fl.set(true); err != nil {
			return fmt.Errorf("seccomp flag %s: %w", fl.name, err)
		}
	}
	return nil
}

// addRule adds r for each of its syscalls the architecture knows; unknown
// names are skipped, as runc does, so one profile serves several kernels
// and architectures. A rule whose action is the default one is skipped too
// (libseccomp refuses it, and it changes nothing).
func addRule(f *libseccomp.ScmpFilter, def libseccomp.ScmpAction, r config.SeccompRule) error {
	act, err := action(r.Action, r.ErrnoRet)
	if err != nil {
		return err
	}
	if act == def {
		return nil
	}
	conds, separate, err := conditions(r.Args)
	if err != nil {
		return err
	}
	for _, name := range r.Names {
		call, err := libseccomp.GetSyscallFromName(name)
		if err != nil {
			continue
		}
		if err := addCall(f, call, act, conds, separate); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func addCall(f *libseccomp.ScmpFilter, call libseccomp.ScmpSyscall, act libseccomp.ScmpAction,
	conds []libseccomp.ScmpCondition, separate bool) error {
	if len(conds) == 0 {
		return f.AddRule(call, act)
	}
	if !separate {
		return f.AddRuleConditional(call, act, conds)
	}
	for _, c := range conds {
		if err := f.AddRuleConditional(call, act, []libseccomp.ScmpCondition{c}); err != nil {
			return err
		}
	}
	return nil
}

// conditions converts a rule's args. When two of them compare the same
// argument, libseccomp cannot AND them; like runc, each then becomes a rule
// of its own (separate), which ORs them.
func conditions(args []config.SeccompArg) (_ []libseccomp.ScmpCondition, separate bool, _ error) {
	var conds []libseccomp.ScmpCondition
	seen := map[uint]bool{}
	for _, a := range args {
		op, ok := ops[a.Op]
		if !ok {
			return nil, false, fmt.Errorf("unknown seccomp operator %q", a.Op)
		}
		c, err := libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
		if err != nil {
			return nil, false, err
		}
		separate = separate || seen[a.Index]
		seen[a.Index] = true
		conds = append(conds, c)
	}
	return conds, separate, nil
}

var ops = map[string]libseccomp.ScmpCompareOp{
	"ne": libseccomp.CompareNotEqual, "lt": libseccomp.CompareLess,
	"le": libseccomp.CompareLessOrEqual, "eq": libseccomp.CompareEqual,
	"ge": libseccomp.CompareGreaterEqual, "gt": libseccomp.CompareGreater,
	"masked_eq": libseccomp.CompareMaskedEqual,
}

// action maps a config action; errno and trace carry errnoRet, EPERM when
// it is nil (as runc).
func action(name string, errnoRet *uint32) (libseccomp.ScmpAction, error) {
	ret := int16(unix.EPERM)
	if errnoRet != nil {
		ret = int16(*errnoRet)
	}
	switch name {
	case "kill", "kill_thread":
		return libseccomp.ActKillThread, nil
	case "kill_process":
		return libseccomp.ActKillProcess, nil
	case "trap":
		return libseccomp.ActTrap, nil
	case "errno":
		return libseccomp.ActErrno.SetReturnCode(ret), nil
	case "trace":
		return libseccomp.ActTrace.SetReturnCode(ret), nil
	case "allow":
		return libseccomp.ActAllow, nil
	case "log":
		return libseccomp.ActLog, nil
	case "notify":
		return libseccomp.ActNotify, nil
	}
	return libseccomp.ActInvalid, fmt.Errorf("unknown seccomp action %q", name)
}

// SupportedFlags lists the SECCOMP_FILTER_FLAG_* names the linked
// libseccomp can set, for `lkc features`.
func SupportedFlags() []string {
	flags := []string{"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"}
	if api, err := libseccomp.GetAPI(); err == nil && api >= 7 {
		flags = append(flags, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")
	}
	return flags
}

// sysinfoOnly says whether c is the filter lkc gives a container with a
// virtual /proc and no seccomp profile of its own
// (config.WithSysinfoNotify): everything allowed, sysinfo(2) sent to the
// listener, on the native architecture alone, no filter flag. Its program
// is sysinfoProgram: libseccomp's first build in a process takes 0.1 to
// 0.17 ms in lkc's static build (0.4 ms with Debian's shared library), in
// init, on the way to every such container's start.
func sysinfoOnly(c *config.Seccomp) bool {
	return runtime.GOARCH == "amd64" && c.DefaultAction == "allow" && len(c.Architectures) == 0 &&
		!c.Log && !c.SpecAllow && !c.WaitKillableRecv && len(c.Syscalls) == 1 && c.Syscalls[0].Action == "notify" && len(c.Syscalls[0].Args) == 0 &&
		slices.Equal(c.Syscalls[0].Names, []string{"sysinfo"})
}

// sysinfoProgram is the program libseccomp builds of a sysinfoOnly config
// on amd64 (TestSysinfoProgramIsLibseccomps), struct sock_filter {code,
// jt, jf, k} in native byte order: the architecture must be x86_64 and the
// call not an x32 one (else the thread is killed), sysinfo (99) gets
// SECCOMP_RET_USER_NOTIF, every other call SECCOMP_RET_ALLOW.
var sysinfoProgram = sockFilter([][4]uint32{
	{0x20, 0, 0, 4},          // A = arch
	{0x15, 0, 6, 0xc000003e}, // x86_64, else kill
	{0x20, 0, 0, 0},          // A = nr
	{0x35, 0, 1, 0x40000000}, // an x32 call:
	{0x15, 0, 3, 0xffffffff}, //   kill unless nr is -1
	{0x15, 1, 0, 99},         // sysinfo: notify
	{0x06, 0, 0, 0x7fff0000}, // SECCOMP_RET_ALLOW
	{0x06, 0, 0, 0x7fc00000}, // SECCOMP_RET_USER_NOTIF
	{0x06, 0, 0, 0},          // SECCOMP_RET_KILL_THREAD
})

func sockFilter(insns [][4]uint32) []byte {
	out := make([]byte, 0, 8*len(insns))
	for _, in := range insns {
		out = binary.NativeEndian.AppendUint16(out, uint16(in[0]))
		out = append(out, byte(in[1]), byte(in[2]))
		out = binary.NativeEndian.AppendUint32(out, in[3])
	}
	return out
}
