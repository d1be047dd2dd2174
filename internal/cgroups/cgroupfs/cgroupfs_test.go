package cgroupfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIsV2(t *testing.T) {
	dir := t.TempDir()
	v1 := filepath.Join(dir, "v1")
	v2 := filepath.Join(dir, "v2")
	for _, d := range []string{filepath.Join(v1, "memory"), filepath.Join(v2, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(v2, "cgroup.controllers"), filepath.Join(v2, "sub", "cgroup.controllers")} {
		if err := os.WriteFile(f, []byte("memory pids\n"), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		dir     string
		v2, err bool
	}{
		{v1, false, false},
		{filepath.Join(v1, "memory"), false, false},
		{v2, true, false},
		{filepath.Join(v2, "sub"), true, false},
		{filepath.Join(dir, "missing"), false, true},
	}
	for _, c := range cases {
		v2, err := IsV2(c.dir)
		if v2 != c.v2 || (err != nil) != c.err {
			t.Errorf("IsV2(%s) = %v, %v; want %v, error %v", c.dir, v2, err, c.v2, c.err)
		}
	}
}

// TestIsV2Host checks the answer on this machine against the kernel's own
// word, the file system type of /sys/fs/cgroup in /proc/self/mountinfo
// (the last mount there, the one on top).
func TestIsV2Host(t *testing.T) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skipf("no mountinfo: %v", err)
	}
	fstype := ""
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		for i, f := range fields {
			if f == "-" && len(fields) > i+1 && len(fields) > 4 && fields[4] == "/sys/fs/cgroup" {
				fstype = fields[i+1]
			}
		}
	}
	if fstype == "" {
		t.Skip("/sys/fs/cgroup is not mounted")
	}
	v2, err := IsV2("/sys/fs/cgroup")
	if err != nil || v2 != (fstype == "cgroup2") {
		t.Errorf("IsV2(/sys/fs/cgroup) = %v, %v; /sys/fs/cgroup is %s", v2, err, fstype)
	}
}

func TestV2Dir(t *testing.T) {
	cases := []struct {
		paths map[string]string
		dir   string
		v2    bool
	}{
		{map[string]string{"": "/sys/fs/cgroup/c"}, "/sys/fs/cgroup/c", true},
		{map[string]string{"memory": "/sys/fs/cgroup/memory/c", "pids": "/sys/fs/cgroup/pids/c"}, "", false},
		{map[string]string{"": "/x", "memory": "/y"}, "/x", false},
		{nil, "", false},
	}
	for _, c := range cases {
		if dir, v2 := V2Dir(c.paths); v2 != c.v2 || (v2 && dir != c.dir) {
			t.Errorf("V2Dir(%v) = %q, %v; want %q, %v", c.paths, dir, v2, c.dir, c.v2)
		}
	}
}
