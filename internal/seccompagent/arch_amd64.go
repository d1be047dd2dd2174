package seccompagent

import "golang.org/x/sys/unix"

// nativeArch is the audit architecture whose struct sysinfo the agent
// writes; a caller of another ABI (ia32, x32) gets the kernel's answer.
const nativeArch = unix.AUDIT_ARCH_X86_64
