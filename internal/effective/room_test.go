package effective

import (
	"math"
	"os"
	"strings"
	"testing"
)

// memTree is a process 7 in memory cgroup /pod/ctr of a v1 hierarchy
// (or a v2 one), the pod limited to 64 MiB holding 40 MiB of which 8 MiB
// inactive file cache, the container limited to 128 MiB; the host has
// availMiB MiB available.
func memTree(t *testing.T, v2 bool, availMiB string) string {
	files := map[string]string{
		"proc/meminfo": "MemTotal:       16000000 kB\nMemFree:          100000 kB\nMemAvailable:   " + availMiB + " kB\n",
	}
	limit, usage, inactive := "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"
	if v2 {
		limit, usage, inactive = "memory.max", "memory.current", "inactive_file"
		files["proc/7/cgroup"] = "0::/pod/ctr\n"
		files["proc/self/mountinfo"] = "41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
		files["sys/fs/cgroup/cgroup.controllers"] = "cpu memory pids\n"
		for _, d := range []string{"pod", "pod/ctr"} {
			files["sys/fs/cgroup/"+d+"/cgroup.controllers"] = "memory\n"
		}
	} else {
		files["proc/7/cgroup"] = "5:memory:/pod/ctr\n"
		files["proc/self/mountinfo"] = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
		files["sys/fs/cgroup/memory/"+limit] = "9223372036854771712\n"
		files["sys/fs/cgroup/memory/"+usage] = "900000000\n"
		files["sys/fs/cgroup/memory/memory.stat"] = inactive + " 0\n"
	}
	base := "sys/fs/cgroup/"
	if !v2 {
		base += "memory/"
	}
	files[base+"cgroup.procs"] = ""
	for d, v := range map[string][3]string{"pod": {"67108864", "41943040", "8388608"}, "pod/ctr": {"134217728", "1048576", "0"}} {
		files[base+d+"/cgroup.procs"] = ""
		files[base+d+"/"+limit] = v[0] + "\n"
		files[base+d+"/"+usage] = v[1] + "\n"
		files[base+d+"/memory.stat"] = "cache 1\n" + inactive + " " + v[2] + "\nactive_file 3\n"
	}
	return tree(t, files)
}

// The room is the tightest of MemAvailable and each limited level's
// limit less its working set: here the pod's, 64 - (40 - 8) = 32 MiB,
// unless the host has less available.
func TestMemoryRoom(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		root := memTree(t, v2, "1048576")
		r, err := MemoryRoom(root, 7)
		if err != nil {
			t.Fatal(err)
		}
		if r.Bytes != 32<<20 || !strings.HasSuffix(r.At, "/pod") {
			t.Errorf("v2 %v: room %d at %s, want 32 MiB at the pod", v2, r.Bytes, r.At)
		}
		root = memTree(t, v2, "10240")
		if r, err := MemoryRoom(root, 7); err != nil || r.Bytes != 10<<20 || r.At != "MemAvailable" {
			t.Errorf("v2 %v: room %+v, %v; want 10 MiB by MemAvailable", v2, r, err)
		}
	}
}

func TestMemAvailableMissing(t *testing.T) {
	root := tree(t, map[string]string{"proc/meminfo": "MemTotal: 1 kB\n"})
	if _, err := memAvailable(root + "/proc/meminfo"); err == nil || !strings.Contains(err.Error(), "no MemAvailable") {
		t.Errorf("got %v", err)
	}
}

// A space bounded by memory says by what; one bounded by the filesystem
// says only how much is free.
func TestSpaceString(t *testing.T) {
	for _, c := range []struct {
		s    Space
		want string
	}{
		{Space{Free: 5 << 20, FS: 5 << 20}, "5 MiB free"},
		{Space{Free: 5 << 20, FS: 5 << 20, Kind: "tmpfs", Memory: &MemRoom{Bytes: 9 << 20, At: "MemAvailable"}}, "5 MiB free"},
		{Space{Free: 5 << 20, FS: 900 << 20, Kind: "tmpfs", Memory: &MemRoom{Bytes: 5 << 20, At: "/sys/fs/cgroup/memory/x"}},
			"5 MiB free (a tmpfs with 900 MiB free, whose files take memory: 5 MiB left under the limit of memory cgroup /sys/fs/cgroup/memory/x)"},
		{Space{Free: 7 << 20, FS: math.MaxUint64, Kind: "ramfs", Memory: &MemRoom{Bytes: 7 << 20, At: "MemAvailable"}},
			"7 MiB free (a ramfs, whose files take memory: 7 MiB left under the host's available memory (MemAvailable))"},
	} {
		if got := c.s.String(); got != c.want {
			t.Errorf("got %q\nwant %q", got, c.want)
		}
	}
}

// DirSpace of the test's directory: on disk, its filesystem's free
// space with no memory bound; on a tmpfs, at most this process's memory
// room.
func TestDirSpace(t *testing.T) {
	s, err := DirSpace("/", t.TempDir(), os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.Kind == "" && (s.Memory != nil || s.Free != s.FS) || s.Kind != "" && (s.Memory == nil || s.Free > s.Memory.Bytes) {
		t.Errorf("%+v", s)
	}
}
