package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hostTreeWithSubmount returns a directory of the host with a mount
// beneath it, for a recursive bind.
func hostTreeWithSubmount(t *testing.T) string {
	t.Helper()
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"/sys", "/dev", "/proc"} {
		for _, line := range strings.Split(string(info), "\n") {
			if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
				return dir
			}
		}
	}
	t.Fatal("none of /sys, /dev, /proc has a mount beneath it")
	return ""
}

// mountOptionsUnder runs a container with an rbind of src at /tree and the
// given extra options, and returns the per-mount options of /tree and of
// every mount beneath it.
func (e *env) mountOptionsUnder(src string, opts ...string) map[string]string {
	e.t.Helper()
	script := `awk '$5=="/tree"||index($5,"/tree/")==1 {print $5, $6}' /proc/self/mountinfo`
	out := e.mustRunOut([]string{"sh", "-c", script}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tree", Type: "bind", Source: src,
			Options: append([]string{"rbind"}, opts...)})
	})
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if point, o, ok := strings.Cut(line, " "); ok {
			m[point] = o
		}
	}
	return m
}

// TestRootfsRecursiveReadonly checks the rro mount option: the bind mount
// and every mount beneath it are read-only, where ro leaves the ones
// beneath writable.
func TestRootfsRecursiveReadonly(t *testing.T) {
	e := newEnv(t)
	src := hostTreeWithSubmount(t)
	plain := e.mountOptionsUnder(src, "ro")
	rw := 0
	for _, o := range plain {
		if strings.HasPrefix(o, "rw") {
			rw++
		}
	}
	if len(plain) < 2 || rw == 0 {
		t.Fatalf("rbind,ro of %s: want a read-only top and a writable mount beneath, got %v", src, plain)
	}
	rro := e.mountOptionsUnder(src, "rro")
	if len(rro) != len(plain) {
		t.Errorf("rbind,rro of %s: %d mounts, rbind,ro has %d", src, len(rro), len(plain))
	}
	for point, o := range rro {
		if !strings.HasPrefix(o, "ro") {
			t.Errorf("rbind,rro of %s: %s is %s, want read-only", src, point, o)
		}
	}
}

// TestRootfsReadonlyPathsKeepExec checks that a read-only path keeps exec,
// suid and dev where its mount had them, as runc does: only ro is added.
func TestRootfsReadonlyPathsKeepExec(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := `/tools/hello; touch /tools/x 2>&1; awk '$5=="/tools" {print $6}' /proc/self/mountinfo`
	out := e.mustRunOut([]string{"sh", "-c", script}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tools", Type: "bind", Source: dir, Options: []string{"rbind", "nosuid"}})
		s.Linux.ReadonlyPaths = append(s.Linux.ReadonlyPaths, "/tools")
	})
	lines := strings.Split(out, "\n")
	if len(lines) != 4 || lines[0] != "hello" || !strings.Contains(lines[1], "Read-only file system") {
		t.Fatalf("read-only path /tools: want the script to run, writes to fail and two mounts, got\n%s", out)
	}
	// The read-only bind covers the configured one: it must have the same
	// options but ro (the configured one is nosuid; its source's mount may
	// add nodev and the like), and so no noexec.
	under, top := lines[2], lines[3]
	if want := strings.Replace(under, "rw,", "ro,", 1); top != want || strings.Contains(top, "noexec") {
		t.Errorf("read-only path /tools: options %q over the configured bind's %q, want %q", top, under, want)
	}
}
