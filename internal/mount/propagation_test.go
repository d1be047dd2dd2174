package mount

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestMountOf(t *testing.T) {
	info := []byte("27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n" +
		"40 27 0:41 / /tmp/a\\040b rw master:3 - tmpfs tmpfs rw\n" +
		"41 27 0:42 / /srv rw - tmpfs tmpfs rw\n")
	cases := []struct {
		id     uint64
		point  string
		shared bool
	}{{27, "/", true}, {40, "/tmp/a b", false}, {41, "/srv", false}}
	for _, c := range cases {
		point, shared, err := mountOf(info, c.id)
		if err != nil || point != c.point || shared != c.shared {
			t.Errorf("mountOf(%d) = %q, %v, %v; want %q, %v", c.id, point, shared, err, c.point, c.shared)
		}
	}
	if _, _, err := mountOf(info, 4); err == nil {
		t.Error("mountOf(4): want an error for a mount not listed (and not mount 40 or 41)")
	}
}

func TestInitialPropagation(t *testing.T) {
	cases := map[uintptr]uintptr{
		0:                                unix.MS_SLAVE | unix.MS_REC,
		unix.MS_SHARED:                   unix.MS_SHARED,
		unix.MS_PRIVATE | unix.MS_REC:    unix.MS_PRIVATE | unix.MS_REC,
		unix.MS_UNBINDABLE:               unix.MS_SLAVE,
		unix.MS_UNBINDABLE | unix.MS_REC: unix.MS_SLAVE | unix.MS_REC,
		unix.MS_SLAVE:                    unix.MS_SLAVE,
	}
	for in, want := range cases {
		if got := initialPropagation(in); got != want {
			t.Errorf("initialPropagation(%#x) = %#x, want %#x", in, got, want)
		}
	}
}
