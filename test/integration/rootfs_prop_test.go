package integration

import (
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// propagationScript prints "point: optional fields" of /proc/self/mountinfo
// for / and /proc, e.g. "/: shared:2".
const propagationScript = `awk '$5=="/"||$5=="/proc" {o=""; for(i=7;$i!="-";i++) o=o" "$i; print $5":"o}' /proc/self/mountinfo`

// propagationOf parses propagationScript's output into point -> fields.
func propagationOf(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if point, fields, ok := strings.Cut(line, ":"); ok {
			m[point] = strings.TrimSpace(fields)
		}
	}
	return m
}

// TestRootfsPropagation runs a container with each linux.rootfsPropagation
// and checks the propagation of its / and of /proc (a mount beneath it,
// which only the recursive forms change).
func TestRootfsPropagation(t *testing.T) {
	hostBefore := hostRootLine(t)
	cases := []struct {
		prop        string
		root, below string // "shared", "unbindable" or "" (neither)
	}{
		{"shared", "shared", ""}, {"rshared", "shared", "shared"},
		{"slave", "", ""}, {"rslave", "", ""},
		{"private", "", ""}, {"rprivate", "", ""},
		{"unbindable", "unbindable", ""}, {"runbindable", "unbindable", "unbindable"},
	}
	kind := func(fields string) string {
		switch {
		case strings.Contains(fields, "shared:"):
			return "shared"
		case strings.Contains(fields, "unbindable"):
			return "unbindable"
		}
		return ""
	}
	for _, tt := range cases {
		t.Run(tt.prop, func(t *testing.T) {
			e := newEnv(t)
			out := e.mustRunOut([]string{"sh", "-c", propagationScript}, func(s *specs.Spec) {
				s.Linux.RootfsPropagation = tt.prop
			})
			got := propagationOf(out)
			if kind(got["/"]) != tt.root || kind(got["/proc"]) != tt.below {
				t.Errorf("rootfsPropagation %s: / has %q, /proc has %q; want %q and %q", tt.prop, got["/"], got["/proc"], tt.root, tt.below)
			}
			if strings.HasPrefix(tt.prop, "private") || strings.HasPrefix(tt.prop, "rprivate") {
				if strings.Contains(got["/"]+got["/proc"], "master:") {
					t.Errorf("rootfsPropagation %s: / or /proc is a slave: %q", tt.prop, out)
				}
			}
		})
	}
	if after := hostRootLine(t); after != hostBefore {
		t.Errorf("the host's / changed: before %q, after %q", hostBefore, after)
	}
}

// hostRootLine returns the mountinfo line of the test's own /, whose
// propagation no container may change.
func hostRootLine(t *testing.T) string {
	t.Helper()
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(info), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == "/" {
			return line
		}
	}
	t.Fatal("no / in /proc/self/mountinfo")
	return ""
}

// TestRootfsPropagationKeepsMountOptions checks that a mount's own
// propagation option wins over a slave or private rootfsPropagation, as in
// runc: a tmpfs asked "rshared" stays shared (a Bidirectional volume under
// a root that Kubernetes or nerdctl made rslave).
func TestRootfsPropagationKeepsMountOptions(t *testing.T) {
	script := `awk '$5=="/tmp" {o=""; for(i=7;$i!="-";i++) o=o" "$i; print o}' /proc/self/mountinfo`
	for _, prop := range []string{"slave", "rslave", "private", "rprivate"} {
		t.Run(prop, func(t *testing.T) {
			e := newEnv(t)
			out := e.mustRunOut([]string{"sh", "-c", script}, func(s *specs.Spec) {
				s.Linux.RootfsPropagation = prop
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"rshared"}})
			})
			if !strings.Contains(out, "shared:") {
				t.Errorf("rootfsPropagation %s: the rshared tmpfs on /tmp has %q, want shared", prop, out)
			}
		})
	}
}
