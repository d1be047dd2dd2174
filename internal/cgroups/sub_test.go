package cgroups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSub(t *testing.T) {
	got, err := ParseSub([]string{"cpu,cpuacct:a/b", "memory:m"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cpu": "a/b", "cpuacct": "a/b", "memory": "m"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	all, err := ParseSub([]string{"x"})
	if err != nil || all[""] != "x" || len(all) != 1 {
		t.Fatalf("plain path: got %v, %v", all, err)
	}
	for _, bad := range [][]string{{"cpu:"}, {":x"}, {"cpu,:x"}, {"cpu:a", "cpu:b"}, {"a", "b"}} {
		if _, err := ParseSub(bad); err == nil {
			t.Errorf("ParseSub(%q) accepted", bad)
		}
	}
}

func TestSubV1(t *testing.T) {
	root := t.TempDir()
	paths := map[string]string{}
	for _, h := range []string{"cpu,cpuacct", "memory", "pids"} {
		paths[h] = filepath.Join(root, h, "ctr")
		if err := os.MkdirAll(filepath.Join(paths[h], "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m, err := Sub(FromPaths(paths, nil), map[string]string{"cpuacct": "sub", "memory": "/sub"})
	if err != nil {
		t.Fatal(err)
	}
	got := m.Paths()
	for h, want := range map[string]string{
		"cpu,cpuacct": filepath.Join(root, "cpu,cpuacct", "ctr", "sub"),
		"memory":      filepath.Join(root, "memory", "ctr", "sub"),
		"pids":        filepath.Join(root, "pids", "ctr"),
	} {
		if got[h] != want {
			t.Errorf("%s: got %s, want %s", h, got[h], want)
		}
	}
	all, err := Sub(FromPaths(paths, nil), map[string]string{"": "sub"})
	if err != nil {
		t.Fatal(err)
	}
	for h, d := range all.Paths() {
		if filepath.Base(d) != "sub" {
			t.Errorf("%s: %s is not the sub-cgroup", h, d)
		}
	}
	for _, bad := range []map[string]string{
		{"": "missing"},
		{"": "../ctr"},
		{"": "sub/../../x"},
		{"": "/"},
		{"blkio": "sub"},
	} {
		if _, err := Sub(FromPaths(paths, nil), bad); err == nil {
			t.Errorf("Sub(%v) accepted", bad)
		}
	}
}

func TestSubV2(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ctr")
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := Sub(FromPaths(map[string]string{"": dir}, nil), map[string]string{"": "a/b"})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Paths()[""]; got != filepath.Join(dir, "a", "b") {
		t.Errorf("got %s", got)
	}
	_, err = Sub(FromPaths(map[string]string{"": dir}, nil), map[string]string{"memory": "a"})
	if err == nil || !strings.Contains(err.Error(), "one hierarchy") {
		t.Errorf("controller on v2: got %v", err)
	}
}
