package spec

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	cases := []struct {
		opts  []string
		flags uintptr
		prop  []uintptr
		data  string
	}{
		{nil, 0, nil, ""},
		{[]string{"defaults"}, 0, nil, ""},
		{[]string{"nosuid", "noexec", "nodev", "ro"}, unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV | unix.MS_RDONLY, nil, ""},
		{[]string{"ro", "rw"}, 0, nil, ""},
		{[]string{"rw", "ro"}, unix.MS_RDONLY, nil, ""},
		{[]string{"nosuid", "suid", "noatime", "atime"}, 0, nil, ""},
		{[]string{"rbind"}, unix.MS_BIND | unix.MS_REC, nil, ""},
		{[]string{"bind", "rprivate"}, unix.MS_BIND, []uintptr{unix.MS_PRIVATE | unix.MS_REC}, ""},
		{[]string{"shared", "rslave"}, 0, []uintptr{unix.MS_SHARED, unix.MS_SLAVE | unix.MS_REC}, ""},
		{[]string{"mode=755", "nosuid", "size=65536k"}, unix.MS_NOSUID, nil, "mode=755,size=65536k"},
		{[]string{"strictatime", "nostrictatime", "relatime"}, unix.MS_RELATIME, nil, ""},
		{[]string{"newinstance", "ptmxmode=0666"}, 0, nil, "newinstance,ptmxmode=0666"},
		{[]string{"sync", "async", "dirsync"}, unix.MS_DIRSYNC, nil, ""},
		{[]string{"tmpcopyup", "mode=755", "notmpcopyup"}, 0, nil, "mode=755"},
		{[]string{"rbind", "rro", "rnosuid"}, unix.MS_BIND | unix.MS_REC, nil, ""},
	}
	for _, c := range cases {
		flags, prop, data := parseMountOptions(c.opts)
		if flags != c.flags || !reflect.DeepEqual(prop, c.prop) || data != c.data {
			t.Errorf("parseMountOptions(%q) = %#x, %v, %q; want %#x, %v, %q", c.opts, flags, prop, data, c.flags, c.prop, c.data)
		}
	}
}

func TestRecursiveAttrsOf(t *testing.T) {
	cases := []struct {
		opts     []string
		set, clr uint64
	}{
		{nil, 0, 0},
		{[]string{"rro"}, unix.MOUNT_ATTR_RDONLY, 0},
		{[]string{"rro", "rrw"}, 0, unix.MOUNT_ATTR_RDONLY},
		{[]string{"rrw", "rro", "rnoexec", "ro"}, unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOEXEC, 0},
		{[]string{"rsuid", "rnodev"}, unix.MOUNT_ATTR_NODEV, unix.MOUNT_ATTR_NOSUID},
		{[]string{"rnoatime", "rstrictatime"}, unix.MOUNT_ATTR_STRICTATIME, unix.MOUNT_ATTR__ATIME},
	}
	for _, c := range cases {
		if set, clr := recursiveAttrsOf(c.opts); set != c.set || clr != c.clr {
			t.Errorf("recursiveAttrsOf(%q) = %#x, %#x; want %#x, %#x", c.opts, set, clr, c.set, c.clr)
		}
	}
}

func TestMountOptionNamesCoverTables(t *testing.T) {
	names := MountOptionNames()
	if want := len(mountFlags) + len(propagationFlags) + len(copyUpOptions) + len(recursiveAttrs) + len(idmapOptions); len(names) != want {
		t.Fatalf("%d names for %d options", len(names), want)
	}
	for _, n := range names {
		_, f := mountFlags[n]
		_, p := propagationFlags[n]
		_, c := copyUpOptions[n]
		_, r := recursiveAttrs[n]
		_, i := idmapOptions[n]
		if !f && !p && !c && !r && !i {
			t.Errorf("%q is listed but not understood", n)
		}
	}
}

func TestCapNumber(t *testing.T) {
	for name, want := range map[string]int{
		"CAP_CHOWN": unix.CAP_CHOWN, "net_admin": unix.CAP_NET_ADMIN, "SYS_ADMIN": unix.CAP_SYS_ADMIN,
		"CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE, "CAP_BOGUS": -1, "": -1,
	} {
		if got := capNumber(name); got != want {
			t.Errorf("capNumber(%q) = %d, want %d", name, got, want)
		}
	}
}

func TestCopyUp(t *testing.T) {
	for _, c := range []struct {
		opts []string
		want bool
	}{
		{nil, false},
		{[]string{"tmpcopyup"}, true},
		{[]string{"tmpcopyup", "notmpcopyup"}, false},
		{[]string{"notmpcopyup", "nosuid", "tmpcopyup"}, true},
	} {
		if got := copyUp(c.opts); got != c.want {
			t.Errorf("copyUp(%q) = %v, want %v", c.opts, got, c.want)
		}
	}
}
