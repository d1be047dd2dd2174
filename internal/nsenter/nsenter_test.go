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
	want := []Join{
		{unix.CLONE_NEWUSER, "/proc/1/ns/user"}, {unix.CLONE_NEWNET, "/proc/1/ns/net"},
		{unix.CLONE_NEWIPC, "/proc/1/ns/ipc"}, {unix.CLONE_NEWNS, "/proc/1/ns/mnt"},
	}
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
	want := []Join{
		{unix.CLONE_NEWUSER, "/proc/42/ns/user"}, {unix.CLONE_NEWPID, "/proc/42/ns/pid"}, {unix.CLONE_NEWNET, "/proc/42/ns/net"},
		{unix.CLONE_NEWUTS, "/proc/42/ns/uts"}, {unix.CLONE_NEWNS, "/proc/42/ns/mnt"},
	}
	if !reflect.DeepEqual(r.Join, want) || !r.Fork || r.Unshare != 0 {
		t.Errorf("ForExec = %+v, want joins %v and a fork", r, want)
	}
}

func TestEncode(t *testing.T) {
	r := Request{
		Cgroups:     []string{"/sys/fs/cgroup/memory/lkc/c/tasks", "/sys/fs/cgroup/pids/lkc/c/tasks"},
		Join:        []Join{{unix.CLONE_NEWUSER, "/proc/1/ns/user"}, {unix.CLONE_NEWNS, "/proc/1/ns/mnt"}},
		Chroot:      "/proc/1/root",
		Unshare:     unix.CLONE_NEWPID | unix.CLONE_NEWTIME,
		TimeOffsets: []config.TimeOffset{{Clock: "monotonic", Secs: -5, Nanos: 7}},
		Fork:        true,
	}
	got := string(r.Encode())
	want := "cgroup /sys/fs/cgroup/memory/lkc/c/tasks\n" +
		"cgroup /sys/fs/cgroup/pids/lkc/c/tasks\n" +
		"join " + strconv.Itoa(unix.CLONE_NEWUSER) + " /proc/1/ns/user\n" +
		"join " + strconv.Itoa(unix.CLONE_NEWNS) + " /proc/1/ns/mnt\n" +
		"chroot /proc/1/root\n" +
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
		{[]config.Namespace{{Type: "mount"}, {Type: "cgroup"}}, true},
		{[]config.Namespace{{Type: "mount"}, {Type: "user"}}, false},
		{[]config.Namespace{{Type: "mount"}, {Type: "user", Path: "/proc/1/ns/user"}}, false},
		{[]config.Namespace{{Type: "mount", Path: "/proc/1/ns/mnt"}, {Type: "pid"}}, false},
		{[]config.Namespace{{Type: "pid"}}, true},
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

func TestPlannable(t *testing.T) {
	adj := 5
	cases := []struct {
		p  config.Process
		ok bool
	}{
		{config.Process{Args: []string{"true"}}, true},
		{config.Process{Args: []string{"sh"}, Terminal: true}, false},
		{config.Process{Args: []string{"true"}, Rlimits: []config.Rlimit{{Name: "RLIMIT_NOFILE", Type: 7, Soft: 1, Hard: 1}}}, true},
		{config.Process{Args: []string{"true"}, OOMScoreAdj: &adj}, false},
	}
	for _, c := range cases {
		if got := Plannable(&c.p); got != c.ok {
			t.Errorf("%+v: Plannable = %v, want %v", c.p, got, c.ok)
		}
	}
}

func TestPlanEncode(t *testing.T) {
	umask := uint32(0o27)
	p := Plan{
		Process: &config.Process{
			Args: []string{"sh", "-c", "echo a b", ""}, Env: []string{"PATH=/bin", "X=a=b"}, Cwd: "/tmp",
			UID: 1000, GID: 1001, AdditionalGids: []uint32{10, 20}, Umask: &umask, NoNewPrivileges: true,
			Capabilities: &config.Capabilities{Bounding: []int{0, 13}, Effective: []int{0}, Permitted: []int{0, 13},
				Inheritable: []int{0}, Ambient: []int{0}},
		},
		PreserveFDs: 2, Seccomp: []byte{1, 2, 3, 4, 5, 6, 7, 8}, SeccompFlags: unix.SECCOMP_FILTER_FLAG_LOG,
	}
	want := []string{"arg sh", "arg -c", "arg echo a b", "arg", "env PATH=/bin", "env X=a=b", "cwd /tmp",
		"uid 1000", "gid 1001", "group 10", "group 20", "umask 27", "caps 2001 1 2001 1 1", "nnp",
		"preserve 2", "seccomp 2"}
	got := strings.Split(strings.TrimSuffix(string(p.Encode()), "\x00"), "\x00")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Encode records\n%q\nwant\n%q", got, want)
	}
	plain := Plan{Process: &config.Process{Args: []string{"true"}, Cwd: "/"}}
	if got := string(plain.Encode()); got != "arg true\x00cwd /\x00uid 0\x00gid 0\x00" {
		t.Errorf("a plain process encodes as %q", got)
	}
	goInit := Plan{Process: &config.Process{Args: []string{"true"}, Cwd: "/",
		Rlimits: []config.Rlimit{{Name: "RLIMIT_NOFILE", Type: 7, Soft: 10, Hard: ^uint64(0)}}},
		NotifyConn: 5, NotifyState: []byte("{}")}
	if got := string(goInit.Encode()); got != "arg true\x00cwd /\x00uid 0\x00gid 0\x00rlimit 7 10 18446744073709551615 RLIMIT_NOFILE\x00notify 5\x00" {
		t.Errorf("a process with rlimits and a seccomp listener encodes as %q", got)
	}
	if got := string(Request{Fork: true, Exec: true}.Encode()); got != "fork\nexec\n" {
		t.Errorf("an exec request encodes as %q", got)
	}
}

func TestPlanEncodeSched(t *testing.T) {
	p := Plan{Process: &config.Process{Args: []string{"true"}, Cwd: "/",
		Scheduler: &config.Scheduler{Policy: "SCHED_DEADLINE", Flags: []string{"SCHED_FLAG_RESET_ON_FORK"},
			Nice: -3, Runtime: 42000, Deadline: 100000, Period: 1000000},
		IOPriority: &config.IOPriority{Class: "IOPRIO_CLASS_BE", Priority: 3}}}
	want := "arg true\x00cwd /\x00uid 0\x00gid 0\x00sched 6 1 -3 0 42000 100000 1000000 SCHED_DEADLINE\x00" +
		"ioprio 16387 IOPRIO_CLASS_BE 3\x00"
	if got := string(p.Encode()); got != want {
		t.Errorf("Encode = %q, want %q", got, want)
	}
	if !Plannable(p.Process) {
		t.Error("a scheduler or an I/O priority must not need Go's init")
	}
}

func TestEncodeAffinity(t *testing.T) {
	r := Request{Cgroups: []string{"/sys/fs/cgroup/cpuset/c/tasks"}, Affinity: "0-1,3", Fork: true, Exec: true}
	want := "cgroup /sys/fs/cgroup/cpuset/c/tasks\naffinity 0-1,3\nfork\nexec\n"
	if got := string(r.Encode()); got != want {
		t.Errorf("Encode = %q, want %q", got, want)
	}
}
