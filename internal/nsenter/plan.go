package nsenter

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// Plan is what the last steps of starting a process (plan.c) need: the
// process's fields and the container's seccomp filter. For a plain `lkc
// exec` the constructor carries it out without the Go runtime (nsenter.c
// says why): the request carries Exec, and SendPlan follows the "pid"
// reply. For every other process Go's init carries it out through the same
// C code (Prepare).
type Plan struct {
	Process     *config.Process
	PreserveFDs int
	// Seccomp is the container's filter as a BPF program (struct
	// sock_filter array) with its SECCOMP_FILTER_FLAG_* flags; nil for none.
	Seccomp      []byte
	SeccompFlags uint
	// NotifyConn is the connection to the seccomp listener that gets the
	// notify fd with NotifyState, when the filter has
	// SECCOMP_FILTER_FLAG_NEW_LISTENER; 0 for none. Go's init only.
	NotifyConn  int
	NotifyState []byte
}

// Plannable says whether the constructor can start p: everything but a
// terminal, an oom score and an AppArmor profile or SELinux label, which
// are Go's init's steps.
func Plannable(p *config.Process) bool {
	return !p.Terminal && p.OOMScoreAdj == nil &&
		p.ApparmorProfile == "" && p.SelinuxLabel == ""
}

// Encode renders the plan's records (NUL-terminated "key value").
func (p Plan) Encode() []byte {
	var b []byte
	rec := func(key, value string) {
		b = append(b, key...)
		if value != "" {
			b = append(b, ' ')
			b = append(b, value...)
		}
		b = append(b, 0)
	}
	proc := p.Process
	for _, a := range proc.Args {
		rec("arg", a)
	}
	for _, e := range proc.Env {
		rec("env", e)
	}
	rec("cwd", proc.Cwd)
	rec("uid", strconv.FormatUint(uint64(proc.UID), 10))
	rec("gid", strconv.FormatUint(uint64(proc.GID), 10))
	for _, g := range proc.AdditionalGids {
		rec("group", strconv.FormatUint(uint64(g), 10))
	}
	for _, r := range proc.Rlimits {
		rec("rlimit", fmt.Sprintf("%d %d %d %s", r.Type, r.Soft, r.Hard, r.Name))
	}
	if proc.Umask != nil {
		rec("umask", strconv.FormatUint(uint64(*proc.Umask), 8))
	}
	if c := proc.Capabilities; c != nil {
		rec("caps", fmt.Sprintf("%x %x %x %x %x",
			config.CapMask(c.Bounding), config.CapMask(c.Effective), config.CapMask(c.Permitted), config.CapMask(c.Inheritable), config.CapMask(c.Ambient)))
	}
	if proc.NoNewPrivileges {
		rec("nnp", "")
	}
	if sc := proc.Scheduler; sc != nil {
		policy, flags := sc.Attr()
		rec("sched", fmt.Sprintf("%d %d %d %d %d %d %d %s",
			policy, flags, sc.Nice, sc.Priority, sc.Runtime, sc.Deadline, sc.Period, sc.Policy))
	}
	if io := proc.IOPriority; io != nil {
		rec("ioprio", fmt.Sprintf("%d %s %d", io.Value(), io.Class, io.Priority))
	}
	if p.PreserveFDs > 0 {
		rec("preserve", strconv.Itoa(p.PreserveFDs))
	}
	if p.Seccomp != nil {
		rec("seccomp", strconv.FormatUint(uint64(p.SeccompFlags), 10))
	}
	if p.NotifyConn > 0 {
		rec("notify", strconv.Itoa(p.NotifyConn))
	}
	return b
}

// SendPlan sends the plan, and the seccomp program after it, to a
// constructor whose request had Exec. It then reports "ready" (or an
// error) like Go's init does.
func SendPlan(fd int, p Plan) error {
	if err := unix.Sendmsg(fd, p.Encode(), nil, nil, 0); err != nil {
		return fmt.Errorf("sending the exec plan to init: %w", err)
	}
	if p.Seccomp == nil {
		return nil
	}
	if err := unix.Sendmsg(fd, p.Seccomp, nil, nil, 0); err != nil {
		return fmt.Errorf("sending the seccomp program to init: %w", err)
	}
	return nil
}
