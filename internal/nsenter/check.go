package nsenter

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// CheckJoins refuses a namespace path that is not a namespace of the type
// it is given as. The constructor's setns names the type too, but a wrong
// file must be refused before anything is created: without the check a net
// namespace given as "ipc" would be joined as a net namespace, and a uts
// file given as "network" would leave the container in the caller's
// network namespace.
func CheckJoins(nss []config.Namespace) error {
	for _, ns := range nss {
		if ns.Path == "" {
			continue
		}
		if err := checkJoin(ns); err != nil {
			return fmt.Errorf("linux.namespaces: %s namespace path %s: %w", ns.Type, ns.Path, err)
		}
	}
	return nil
}

func checkJoin(ns config.Namespace) error {
	fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	typ, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err == unix.ENOTTY || err == unix.EINVAL {
		return fmt.Errorf("not a namespace file")
	}
	if err != nil {
		return &os.SyscallError{Syscall: "ioctl(NS_GET_NSTYPE)", Err: err}
	}
	if typ != cloneFlags[ns.Type] {
		return fmt.Errorf("is a %s namespace, not %s", typeName(typ), ns.Type)
	}
	return nil
}

// typeName names a CLONE_NEW* flag as config.json does.
func typeName(flag int) string {
	for name, f := range cloneFlags {
		if f == flag {
			return name
		}
	}
	return fmt.Sprintf("unknown (%#x)", flag)
}
