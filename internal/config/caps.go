package config

import (
	"fmt"
	"strconv"
)

// CapNames lists Linux capabilities by number (linux/capability.h).
var CapNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// CapName names capability number n.
func CapName(n int) string {
	if n >= 0 && n < len(CapNames) {
		return CapNames[n]
	}
	return "capability " + strconv.Itoa(n)
}

// Grantable reports, before anything is changed, whether capset(2) would
// give the process caps when the process doing it holds permitted and
// inheritable (masks, as capget returns them). The kernel's rules: the new
// permitted set within the old one, effective within the new permitted,
// inheritable within the old inheritable plus what is both permitted and
// left in the bounding set. Ambient capabilities are raised only where the
// kernel allows, so they are never refused.
func (caps *Capabilities) Grantable(permitted, inheritable uint64) error {
	p, e, i := CapMask(caps.Permitted), CapMask(caps.Effective), CapMask(caps.Inheritable)
	checks := []struct {
		set     string
		missing uint64
		why     string
	}{
		{"permitted", p &^ permitted, "the runtime does not hold it (withheld from its bounding set?)"},
		{"effective", e &^ permitted, "the runtime does not hold it (withheld from its bounding set?)"},
		{"effective", e &^ p, "it is not in process.capabilities.permitted"},
		{"inheritable", i &^ (inheritable | permitted&CapMask(caps.Bounding)), "it is neither held by the runtime nor in process.capabilities.bounding"},
	}
	for _, c := range checks {
		if c.missing != 0 {
			return fmt.Errorf("process.capabilities.%s: cannot grant %s: %s", c.set, CapName(lowest(c.missing)), c.why)
		}
	}
	return nil
}

func lowest(mask uint64) int {
	for n := 0; n < 64; n++ {
		if mask&(1<<n) != 0 {
			return n
		}
	}
	return -1
}
