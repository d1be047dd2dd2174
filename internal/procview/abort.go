package procview

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// abortDead aborts the FUSE connection of the session mounted at dir, if
// one is. Both daemon processes died: the kernel ends the connection when
// the last fd of /dev/fuse closes, but one that outlived them (inherited
// or duplicated by another process) keeps it alive with nobody to answer,
// and every reader of its files sleeps until that fd closes. The
// connection's abort file (fusectl) ends every request, as the last close
// would. fusectl is mounted for the moment on a private directory under
// the run directory when /sys/fs/fuse/connections does not hold it.
func abortDead(dir, runDir string) error {
	dev, ok, err := fuseMountDev(dir)
	if err != nil || !ok {
		return err
	}
	name := fmt.Sprint(dev)
	abort := filepath.Join("/sys/fs/fuse/connections", name, "abort")
	if _, err := os.Stat(abort); err != nil {
		ctl, err := os.MkdirTemp(runDir, "fusectl-")
		if err != nil {
			return fmt.Errorf("fusectl directory: %w", err)
		}
		defer os.Remove(ctl)
		if err := unix.Mount("fusectl", ctl, "fusectl", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("mounting fusectl on %s: %w", ctl, err)
		}
		defer unix.Unmount(ctl, unix.MNT_DETACH)
		abort = filepath.Join(ctl, name, "abort")
	}
	if err := os.WriteFile(abort, []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("aborting the dead session at %s: %w", dir, err)
	}
	return nil
}

// fuseMountDev returns the kernel's device number of the lkc FUSE mount whose mount
// point is dir (the last one mounted there), from /proc/self/mountinfo: a
// stat of a dead session's mount point fails (ENOTCONN).
func fuseMountDev(dir string) (uint64, bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	var dev uint64
	found := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options... - fstype source superoptions
		fields := strings.Fields(sc.Text())
		sep := indexOf(fields, "-")
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) || fields[4] != dir || fields[sep+1] != "fuse.lkc" {
			continue
		}
		var major, minor uint32
		if _, err := fmt.Sscanf(fields[2], "%d:%d", &major, &minor); err != nil {
			continue
		}
		dev, found = uint64(major)<<20|uint64(minor), true // the kernel's dev_t, as fusectl names it
	}
	if err := sc.Err(); err != nil {
		return 0, false, fmt.Errorf("reading mountinfo: %w", err)
	}
	return dev, found, nil
}

func indexOf(fields []string, s string) int {
	for i, f := range fields {
		if f == s {
			return i
		}
	}
	return -1
}
