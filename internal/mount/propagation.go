package mount

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// initialPropagation is what / (the copy of the caller's tree) gets before
// anything is mounted. It stops the container's mounts from reaching the
// caller's namespace unless rootfsPropagation asks for a shared root; an
// unbindable one waits until after the pivot (FinishRoot), since the rootfs
// could not be bound on itself beneath an unbindable /.
func initialPropagation(prop uintptr) uintptr {
	switch {
	case prop == 0:
		return unix.MS_SLAVE | unix.MS_REC
	case prop&unix.MS_UNBINDABLE != 0:
		return unix.MS_SLAVE | prop&unix.MS_REC
	}
	return prop
}

// privateParent makes the mount holding rootfs private when it is shared,
// as runc does: pivot_root refuses a new root whose parent mount is shared,
// and the self-bind of the rootfs would otherwise propagate to its peers.
// It acts in the container's new mount namespace only.
func privateParent(rootfs string) error {
	id, err := mountID(rootfs)
	if err != nil {
		return err
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	point, shared, err := mountOf(info, id)
	if err != nil {
		return fmt.Errorf("finding the mount of rootfs %s: %w", rootfs, err)
	}
	if !shared {
		return nil
	}
	return mount("", point, "", unix.MS_PRIVATE, "")
}

// mountOf finds mount id in mountinfo ("id parent dev root point options
// [optional fields] - ...") and says where it is and whether it is shared.
func mountOf(mountinfo []byte, id uint64) (point string, shared bool, err error) {
	want := []byte(strconv.FormatUint(id, 10) + " ")
	for _, line := range bytes.Split(mountinfo, []byte("\n")) {
		if !bytes.HasPrefix(line, want) {
			continue
		}
		f := strings.Fields(string(line))
		if len(f) < 7 {
			break
		}
		for _, opt := range f[6:] {
			if opt == "-" {
				break
			}
			shared = shared || strings.HasPrefix(opt, "shared:")
		}
		return unescapeOctal(f[4]), shared, nil
	}
	return "", false, fmt.Errorf("mount %d not in /proc/self/mountinfo", id)
}

// unescapeOctal undoes mountinfo's \ooo escapes (space, tab, newline, \).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
