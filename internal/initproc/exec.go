package initproc

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/lsm"
	"github.com/lkc-containers/lkc/internal/seccomp"
)

// exec switches to the configured user and capabilities and replaces init
// with the container's process. It returns only on failure.
//
// The rlimits bind the process, not lkc's set-up, so they come last but
// for credentials and seccomp: an RLIMIT_AS under what the Go runtime has
// reserved fails every new mapping, a low RLIMIT_NOFILE every open. Nothing
// after them maps memory or opens files but the seccomp listener's fd (the
// filter was built during create). They come before setUser, which may
// drop the CAP_SYS_RESOURCE that raising a hard limit takes.
//
// The seccomp filter goes in as late as possible, so that it filters as few
// of init's own calls as it can: right before execve with no_new_privs.
// Without no_new_privs loading a filter needs CAP_SYS_ADMIN, which setUser
// may drop, so then (like runc) it goes in before setUser, and the profile
// must allow the credential calls (setgroups, setresuid, capset, prctl).
//
// Preconditions: the goroutine is locked to its thread (credentials,
// capabilities and the filter are per thread).
func (p *prepared) exec() error {
	proc := &p.c.Process
	if proc.Umask != nil {
		unix.Umask(int(*proc.Umask))
	}
	// Before seccomp and the user change, which could forbid the write.
	if err := lsm.Default.OnExec(proc); err != nil {
		return err
	}
	for _, r := range proc.Rlimits {
		if err := setRlimit(r); err != nil {
			return err
		}
	}
	if !proc.NoNewPrivileges {
		if err := p.loadSeccomp(); err != nil {
			return err
		}
	}
	if err := setUser(proc); err != nil {
		return err
	}
	if proc.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
		}
		if err := p.loadSeccomp(); err != nil {
			return err
		}
	}
	if err := unix.Exec(p.path, proc.Args, p.env); err != nil {
		return fmt.Errorf("exec %s: %w", p.path, err)
	}
	return nil
}

// buildSeccomp builds the container's filter, if any, during create, where
// a bad profile fails the create and the build runs under lkc's own
// rlimits.
func (p *prepared) buildSeccomp() error {
	if p.c.Seccomp == nil {
		return nil
	}
	var err error
	p.seccompProg, p.seccompFlags, err = seccomp.Program(p.c.Seccomp)
	return err
}

// loadSeccomp installs the filter built by buildSeccomp, if any, and hands
// the notify fd to the listener when a rule uses SCMP_ACT_NOTIFY.
func (p *prepared) loadSeccomp() error {
	if p.seccompProg == nil {
		return nil
	}
	fd, err := seccomp.Install(p.seccompProg, p.seccompFlags)
	if err != nil || fd < 0 {
		return err
	}
	defer unix.Close(fd)
	conn, err := strconv.Atoi(os.Getenv(SeccompEnv))
	if err != nil {
		return fmt.Errorf("seccomp uses SCMP_ACT_NOTIFY but there is no connection to listenerPath")
	}
	defer unix.Close(conn)
	return seccomp.SendNotify(conn, fd, p.seccompState)
}

// setUser drops to the process's user and groups and leaves it exactly the
// configured capabilities.
func setUser(proc *config.Process) error {
	caps := proc.Capabilities
	if caps != nil {
		if err := dropBounding(caps.Bounding); err != nil {
			return err
		}
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_SET_KEEPCAPS): %w", err)
		}
	}
	if err := setIDs(proc); err != nil {
		return err
	}
	if caps == nil {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_KEEPCAPS): %w", err)
	}
	return setCaps(caps)
}

func setIDs(proc *config.Process) error {
	groups := make([]int, len(proc.AdditionalGids))
	for i, g := range proc.AdditionalGids {
		groups[i] = int(g)
	}
	if err := setgroups(groups); err != nil && (len(groups) > 0 || err != unix.EPERM) {
		return fmt.Errorf("setgroups %s: %w", groupList(proc.AdditionalGids), err)
	}
	// Raw per-thread calls: only this thread execs, and Go's all-threads
	// versions would signal every runtime thread for nothing.
	g, u := uintptr(proc.GID), uintptr(proc.UID)
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, g, g, g); e != 0 {
		return fmt.Errorf("setting gid %d: %w", proc.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, u, u, u); e != 0 {
		return fmt.Errorf("setting uid %d: %w", proc.UID, e)
	}
	return nil
}

// groupList names a list of group ids for an error: in full when short,
// else its length and first few, so that a list of thousands stays one
// readable line.
func groupList(gids []uint32) string {
	const shown = 8
	if len(gids) <= shown {
		return fmt.Sprint(gids)
	}
	return fmt.Sprintf("(%d groups: %v ...)", len(gids), gids[:shown])
}

func dropBounding(keep []int) error {
	set := config.CapMask(keep)
	for c := 0; c < 64; c++ {
		if set&(1<<c) != 0 {
			continue
		}
		err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0)
		if err == unix.EINVAL {
			return nil // past the kernel's last capability
		}
		if err != nil {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	return nil
}

func setCaps(caps *config.Capabilities) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	e, p, in := config.CapMask(caps.Effective), config.CapMask(caps.Permitted), config.CapMask(caps.Inheritable)
	for i := 0; i < 2; i++ {
		data[i].Effective = uint32(e >> (32 * i))
		data[i].Permitted = uint32(p >> (32 * i))
		data[i].Inheritable = uint32(in >> (32 * i))
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	for _, c := range caps.Ambient {
		// The kernel raises an ambient capability only if it is permitted and
		// inheritable; like runc and crun, skip the others (`runc spec`
		// lists ambient capabilities without inheritable ones).
		err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0)
		if err != nil && err != unix.EPERM {
			return fmt.Errorf("raising ambient capability %d: %w", c, err)
		}
	}
	return nil
}

// lookPath finds the executable of args[0] in the container, using the
// PATH of the process's environment as the shell would.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if err := checkExecutable(name); err != nil {
			return "", fmt.Errorf("exec %q: %w", name, err)
		}
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			path = kv[5:]
		}
	}
	// dir+"/"+name as the shell and the constructor's find_exec put it,
	// not filepath.Join, which would clean it: the process sees the path
	// it was started by as $0 of a script and in /proc/self/cmdline.
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %q: executable file not found in $PATH", name)
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s: permission denied", p)
	}
	return nil
}

// withHome adds HOME from the container's /etc/passwd (or /) when the
// environment lacks it, as runc does.
func withHome(env []string, uid uint32) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "HOME=") {
			return env
		}
	}
	return append(env, "HOME="+homeOf(uid))
}

func homeOf(uid uint32) string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return "/"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	want := strconv.FormatUint(uint64(uid), 10)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 6 && fields[2] == want && fields[5] != "" {
			return fields[5]
		}
	}
	return "/"
}
