package cr

import (
	"fmt"
	"strings"

	"github.com/lkc-containers/lkc/internal/lsm"
)

// checkLSMOpts refuses a --lsm-profile or --lsm-mount-context that CRIU
// would refuse deep in the restore, or that the host cannot apply: CRIU
// takes a profile only as "apparmor:NAME" or "selinux:LABEL", and writes
// the mount context into mount options as context="...", where a quote
// would end it and add options of the caller's. A confinement the
// host has no module for is an error, never skipped, as at create (lsm).
func checkLSMOpts(profile, mountContext string, h lsm.Host) error {
	if err := checkLSMFormat(profile, mountContext); err != nil {
		return err
	}
	if mod, _, _ := strings.Cut(profile, ":"); mod == "apparmor" && !h.AppArmor() {
		return fmt.Errorf("--lsm-profile %q: AppArmor is not enabled on this host", profile)
	}
	if profile != "" && !strings.HasPrefix(profile, "apparmor:") && !h.SELinux() {
		return fmt.Errorf("--lsm-profile %q: SELinux is not enabled on this host", profile)
	}
	if mountContext != "" && !h.SELinux() {
		return fmt.Errorf("--lsm-mount-context %q: SELinux is not enabled on this host", mountContext)
	}
	return nil
}

// checkLSMFormat is checkLSMOpts's part that needs no host.
func checkLSMFormat(profile, mountContext string) error {
	if profile != "" {
		mod, name, _ := strings.Cut(profile, ":")
		if (mod != "apparmor" && mod != "selinux") || name == "" || !printable(name) {
			return fmt.Errorf("--lsm-profile %q: want apparmor:PROFILE or selinux:LABEL", profile)
		}
		if mod == "selinux" && !selinuxContext(name) {
			return fmt.Errorf("--lsm-profile %q: %q is not an SELinux label (user:role:type[:level])", profile, name)
		}
	}
	if mountContext != "" && !selinuxContext(mountContext) {
		return fmt.Errorf("--lsm-mount-context %q: not an SELinux context (user:role:type[:level])", mountContext)
	}
	return nil
}

// selinuxContext reports whether s has an SELinux context's shape: at
// least user, role and type, none empty (the level may hold MCS
// categories, "s0:c1,c2"), and no quote or space, which would end the
// quoted mount option.
func selinuxContext(s string) bool {
	f := strings.SplitN(s, ":", 4)
	if len(f) < 3 || f[0] == "" || f[1] == "" || f[2] == "" || (len(f) == 4 && f[3] == "") {
		return false
	}
	return printable(s) && !strings.Contains(s, `"`)
}

// printable reports whether s is printable ASCII: an LSM name goes into a
// /proc attr file and a log line as it is.
func printable(s string) bool {
	for _, r := range s {
		if r <= ' ' || r > '~' {
			return false
		}
	}
	return true
}
