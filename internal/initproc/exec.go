package initproc

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/lsm"
	"github.com/lkc-containers/lkc/internal/nsenter"
	"github.com/lkc-containers/lkc/internal/seccomp"
)

// exec takes on the process's AppArmor profile and SELinux label, then
// carries out the rest of its plan (nsenter.Prepared.Exec, the C code the
// constructor runs for a plain `lkc exec`): umask, rlimits, the seccomp
// filter, user, groups, capabilities, no_new_privs and execve. It returns
// only on failure.
//
// Preconditions: the goroutine is locked to its thread (the label,
// credentials, capabilities and the filter are per thread).
func (p *prepared) exec() error {
	// Before seccomp and the user change, which could forbid the write.
	if p.proc != nil {
		if err := lsm.OnExec(&p.c.Process, p.proc); err != nil {
			return err
		}
	}
	return p.plan.Exec()
}

// planFor gives the process's plan the container's filter, built during
// create, where a bad profile fails the create and the build runs under
// lkc's own rlimits, and the connection to the seccomp listener when a
// rule uses SCMP_ACT_NOTIFY.
func (p *prepared) planFor(preserve int) (nsenter.Plan, error) {
	plan := nsenter.Plan{Process: &p.c.Process, PreserveFDs: preserve}
	if p.c.Seccomp == nil {
		return plan, nil
	}
	var err error
	if plan.Seccomp, plan.SeccompFlags, err = seccomp.Program(p.c.Seccomp); err != nil {
		return plan, err
	}
	if plan.SeccompFlags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
		return plan, nil
	}
	if plan.NotifyConn, err = strconv.Atoi(os.Getenv(SeccompEnv)); err != nil {
		return plan, fmt.Errorf("seccomp uses SCMP_ACT_NOTIFY but there is no connection to listenerPath")
	}
	plan.NotifyState = p.seccompState
	return plan, nil
}
