package nsenter

import (
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

func TestForContainerOrdersJoins(t *testing.T) {
	c := &config.Config{Namespaces: []config.Namespace{
		{Type: "mount", Path: "/proc/1/ns/mnt"}, {Type: "network", Path: "/proc/1/ns/net"},
		{Type: "user", Path: "/proc/1/ns/user"}, {Type: "uts"}, {Type: "ipc", Path: "/proc/1/ns/ipc"},
	}}
	r := ForContainer(c)
	want := []string{"/proc/1/ns/user", "/proc/1/ns/net", "/proc/1/ns/ipc", "/proc/1/ns/mnt"}
	if !reflect.DeepEqual(r.Join, want) {
		t.Errorf("Join = %v, want user first, mount last: %v", r.Join, want)
	}
	if r.Unshare != unix.CLONE_NEWUTS || r.Fork {
		t.Errorf("Unshare %#x Fork %v, want CLONE_NEWUTS and no fork", r.Unshare, r.Fork)
	}
}

func TestForContainerFork(t *testing.T) {
	cases := []struct {
		nss  []config.Namespace
		fork bool
	}{
		{[]config.Namespace{{Type: "mount"}}, false},
		{[]config.Namespace{{Type: "mount"}, {Type: "pid"}}, true},
		{[]config.Namespace{{Type: "mount"}, {Type: "time"}}, true},
		{[]config.Namespace{{Type: "mount"}, {Type: "pid", Path: "/proc/9/ns/pid"}}, true},
		{[]config.Namespace{{Type: "mount"}, {Type: "user"}, {Type: "network"}}, false},
	}
	for _, c := range cases {
		if got := ForContainer(&config.Config{Namespaces: c.nss}).Fork; got != c.fork {
			t.Errorf("%+v: Fork = %v, want %v", c.nss, got, c.fork)
		}
	}
	r := ForContainer(&config.Config{Namespaces: []config.Namespace{
		{Type: "pid"}, {Type: "mount"}, {Type: "network"}, {Type: "ipc"}, {Type: "uts"}, {Type: "user"}, {Type: "cgroup"}, {Type: "time"},
	}})
	all := unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS |
		unix.CLONE_NEWUSER | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME
	if r.Unshare != all || len(r.Join) != 0 {
		t.Errorf("all new: Unshare %#x Join %v", r.Unshare, r.Join)
	}
}

func TestForExec(t *testing.T) {
	r := ForExec(42, []string{"mount", "pid", "network", "user", "uts"})
	want := []string{"/proc/42/ns/user", "/proc/42/ns/pid", "/proc/42/ns/net", "/proc/42/ns/uts", "/proc/42/ns/mnt"}
	if !reflect.DeepEqual(r.Join, want) || !r.Fork || r.Unshare != 0 {
		t.Errorf("ForExec = %+v, want joins %v and a fork", r, want)
	}
}

func TestEncode(t *testing.T) {
	r := Request{
		Cgroups:     []string{"/sys/fs/cgroup/memory/lkc/c/tasks", "/sys/fs/cgroup/pids/lkc/c/tasks"},
		Join:        []string{"/proc/1/ns/user", "/proc/1/ns/mnt"},
		Unshare:     unix.CLONE_NEWPID | unix.CLONE_NEWTIME,
		TimeOffsets: []config.TimeOffset{{Clock: "monotonic", Secs: -5, Nanos: 7}},
		Fork:        true,
	}
	got := string(r.Encode())
	want := "cgroup /sys/fs/cgroup/memory/lkc/c/tasks\n" +
		"cgroup /sys/fs/cgroup/pids/lkc/c/tasks\n" +
		"join /proc/1/ns/user\n" +
		"join /proc/1/ns/mnt\n" +
		"unshare " + strconv.Itoa(unix.CLONE_NEWPID|unix.CLONE_NEWTIME) + "\n" +
		"timeoffset monotonic -5 7\n" +
		"fork\n"
	if got != want {
		t.Errorf("Encode =\n%s\nwant\n%s", got, want)
	}
	if empty := string(Request{}.Encode()); empty != "" {
		t.Errorf("empty request encodes as %q", empty)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if !strings.HasPrefix(lines[0], "cgroup ") || lines[len(lines)-1] != "fork" {
		t.Errorf("cgroup lines must come first and fork last: %q", lines)
	}
}

func TestEncodeDeferCgroups(t *testing.T) {
	r := Request{DeferCgroups: true, Unshare: unix.CLONE_NEWNS, Fork: true}
	want := "defer cgroup\nunshare " + strconv.Itoa(unix.CLONE_NEWNS) + "\nfork\n"
	if got := string(r.Encode()); got != want {
		t.Errorf("Encode = %q, want %q", got, want)
	}
	late := string(Request{Cgroups: []string{"/sys/fs/cgroup/pids/lkc/c/tasks"}}.Encode())
	if late != "cgroup /sys/fs/cgroup/pids/lkc/c/tasks\n" {
		t.Errorf("the deferred message encodes as %q", late)
	}
}

func TestCanDeferCgroups(t *testing.T) {
	cases := []struct {
		nss []config.Namespace
		ok  bool
	}{
		{[]config.Namespace{{Type: "mount"}, {Type: "pid"}, {Type: "network"}}, true},
		{[]config.Namespace{{Type: "mount"}, {Type: "network", Path: "/proc/1/ns/net"}}, true},
		{[]config.Namespace{{Type: "mount"}, {Type: "cgroup"}}, false},
		{[]config.Namespace{{Type: "mount"}, {Type: "user"}}, false},
		{[]config.Namespace{{Type: "mount"}, {Type: "user", Path: "/proc/1/ns/user"}}, false},
	}
	for _, c := range cases {
		if got := ForContainer(&config.Config{Namespaces: c.nss}).CanDeferCgroups(); got != c.ok {
			t.Errorf("%+v: CanDeferCgroups = %v, want %v", c.nss, got, c.ok)
		}
	}
	if ForExec(1, []string{"mount", "user"}).CanDeferCgroups() {
		t.Error("an exec joining a user namespace may not defer its cgroups")
	}
}
