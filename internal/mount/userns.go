package mount

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// UserNSes are the user namespaces idmapped mounts take their maps from
// (IDMapped), one per distinct set of maps or joined namespace, held by
// an fd: a namespace lives on as long as an fd or a mount refers to it,
// so the process that made it is gone at once. Close releases them; the
// mounts made keep what they use.
type UserNSes struct {
	byMaps map[string]*os.File
}

// Close closes the namespaces' fds.
func (u *UserNSes) Close() {
	for _, f := range u.byMaps {
		f.Close()
	}
	u.byMaps = nil
}

// get returns the user namespace of idm: the one it names, or one made
// with its maps.
func (u *UserNSes) get(idm *config.MountIDMapping) (*os.File, error) {
	key := "path " + idm.UserNS
	if idm.UserNS == "" {
		key = "uid " + config.IDMapLines(idm.UIDMappings) + "gid " + config.IDMapLines(idm.GIDMappings)
	}
	if f := u.byMaps[key]; f != nil {
		return f, nil
	}
	var f *os.File
	var err error
	if idm.UserNS != "" {
		if f, err = os.Open(idm.UserNS); err != nil {
			return nil, fmt.Errorf("user namespace of an idmapped mount: %w", err)
		}
	} else if f, err = newUserNS(idm.UIDMappings, idm.GIDMappings); err != nil {
		return nil, err
	}
	if u.byMaps == nil {
		u.byMaps = map[string]*os.File{}
	}
	u.byMaps[key] = f
	return f, nil
}

// newUserNS makes a user namespace with the given maps and returns its
// fd. A process must be in it while the maps are written: lkc's own
// binary, started in a new user namespace with the maps written before
// its exec (as os/exec writes them) and traced (PTRACE_TRACEME), so that
// it stops at the exec before running a single instruction; its
// namespace is opened, and it is killed and reaped. The setgroups of the
// namespace are denied: nothing runs in it.
func newUserNS(uids, gids []config.IDMap) (*os.File, error) {
	attr := &syscall.ProcAttr{Sys: &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: sysIDMaps(uids),
		GidMappings: sysIDMaps(gids),
		Ptrace:      true,
	}}
	pid, err := syscall.ForkExec("/proc/self/exe", []string{"lkc-userns"}, attr)
	if err != nil {
		return nil, fmt.Errorf("making a user namespace with uid map %v and gid map %v: %w", uids, gids, err)
	}
	defer func() {
		unix.Kill(pid, unix.SIGKILL)
		for {
			if _, err := unix.Wait4(pid, nil, 0, nil); err != unix.EINTR {
				break
			}
		}
	}()
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", pid))
	if err != nil {
		return nil, fmt.Errorf("user namespace of an idmapped mount: %w", err)
	}
	return f, nil
}

func sysIDMaps(maps []config.IDMap) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(maps))
	for i, m := range maps {
		out[i] = syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
	}
	return out
}
