package seccompagent

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// notified answers the next notification of l, recording it in the
// journal while it is in flight.
func (a *Agent) notified(l *listener) {
	var n notif
	if err := recv(l.fd, &n); err != nil {
		if !errors.Is(err, unix.ENOENT) {
			a.cfg.Logf("seccomp agent: %s: receive: %v", l.key(), err)
		}
		return
	}
	if !isSysinfo(&n) {
		a.reply(l, &notifResp{id: n.id, flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE})
		return
	}
	a.jr.record(l.slot, &n)
	if a.dieMarker != "" && os.Remove(a.dieMarker) == nil {
		unix.Kill(unix.Getpid(), unix.SIGKILL)
	}
	a.answer(l, &n)
	a.jr.clear(l.slot)
}

func isSysinfo(n *notif) bool { return n.arch == nativeArch && n.nr == unix.SYS_SYSINFO }

// answer writes the container's sysinfo into the caller's buffer and
// completes the call: EFAULT for a bad buffer as from the kernel, the
// kernel's own answer (host values) when the container cannot be read.
func (a *Agent) answer(l *listener, n *notif) {
	var si unix.Sysinfo_t
	if err := a.cfg.Resolver.Sysinfo(l.name, &si); err != nil {
		a.cfg.Logf("seccomp agent: %s: sysinfo: %v", l.name, err)
		a.reply(l, &notifResp{id: n.id, flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE})
		return
	}
	// The pid is the caller's only while its id is valid: checked right
	// before writing, so a caller killed meanwhile is not confused with a
	// process that took its pid (the window left is one syscall wide).
	if idValid(l.fd, n.id) != nil {
		return
	}
	r := &notifResp{id: n.id}
	if err := writeSysinfo(int(n.pid), n.args[0], &si); err != nil {
		r.error = -int32(unix.EFAULT)
	}
	a.reply(l, r)
}

func (a *Agent) reply(l *listener, r *notifResp) {
	if err := send(l.fd, r); err != nil && !errors.Is(err, unix.ENOENT) {
		a.cfg.Logf("seccomp agent: %s: answer: %v", l.key(), err)
	}
}
