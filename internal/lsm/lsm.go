// Package lsm confines a container's processes with the Linux security
// module the config names: an AppArmor profile or an SELinux label, taken
// on at execve. A confinement that was asked for and cannot be applied is
// an error, never skipped: the container would run less confined than its
// author meant.
package lsm

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// Host is where the modules' sysfs files are; Default is the real one,
// tests use a temporary directory.
type Host struct {
	Sys string // /sys
}

// Default is the running kernel's.
var Default = Host{Sys: "/sys"}

// ProcFS opens files beneath a procfs root, as safeproc.Root does: the
// attr files are written through it, never through a path that a mount of
// the container's could redirect to another file.
type ProcFS interface {
	OpenFile(sub string, flags int) (*os.File, error)
}

// AppArmor reports whether AppArmor is enabled: its securityfs directory
// is there, or the module says it is on.
func (h Host) AppArmor() bool {
	if _, err := os.Stat(h.Sys + "/kernel/security/apparmor"); err == nil {
		return true
	}
	b, err := os.ReadFile(h.Sys + "/module/apparmor/parameters/enabled")
	return err == nil && bytes.HasPrefix(b, []byte("Y"))
}

// SELinux reports whether SELinux is enabled: selinuxfs is mounted at
// /sys/fs/selinux.
func (h Host) SELinux() bool {
	var st unix.Statfs_t
	return unix.Statfs(h.Sys+"/fs/selinux", &st) == nil && st.Type == unix.SELINUX_MAGIC
}

// Check refuses a confinement the host cannot apply: a profile or label
// for a module that is not enabled.
func (h Host) Check(p *config.Process, mountLabel string) error {
	if p.ApparmorProfile != "" && !h.AppArmor() {
		return fmt.Errorf("process.apparmorProfile %q: AppArmor is not enabled on this host", p.ApparmorProfile)
	}
	if p.SelinuxLabel == "" && mountLabel == "" {
		return nil
	}
	if h.SELinux() {
		return nil
	}
	if p.SelinuxLabel != "" {
		return fmt.Errorf("process.selinuxLabel %q: SELinux is not enabled on this host", p.SelinuxLabel)
	}
	return fmt.Errorf("linux.mountLabel %q: SELinux is not enabled on this host", mountLabel)
}

// OnExec makes the calling thread take on p's profile and label at its
// next execve, as runc does, through proc.
//
// Preconditions: the thread is locked and is the one that execs.
func OnExec(p *config.Process, proc ProcFS) error {
	if p.ApparmorProfile != "" {
		if err := apparmorOnExec(proc, p.ApparmorProfile); err != nil {
			return fmt.Errorf("process.apparmorProfile %q: %w", p.ApparmorProfile, err)
		}
	}
	if p.SelinuxLabel != "" {
		if err := writeAttr(proc, "thread-self/attr/exec", p.SelinuxLabel); err != nil {
			return fmt.Errorf("process.selinuxLabel %q: %w", p.SelinuxLabel, err)
		}
	}
	return nil
}

// apparmorOnExec writes the change_onexec request; kernels with stacked
// modules have AppArmor's own attr directory, older ones only attr/exec.
func apparmorOnExec(proc ProcFS, profile string) error {
	err := writeAttr(proc, "thread-self/attr/apparmor/exec", "exec "+profile)
	if errors.Is(err, os.ErrNotExist) {
		err = writeAttr(proc, "thread-self/attr/exec", "exec "+profile)
	}
	return err
}

func writeAttr(proc ProcFS, path, value string) error {
	f, err := proc.OpenFile(path, os.O_WRONLY)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(value))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
