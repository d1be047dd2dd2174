package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The runc escapes of November 2025 all redirect something the runtime
// does while it builds the container's tree: the /dev/null a mask binds
// (CVE-2025-31133), the /dev/console the terminal is bound on
// (CVE-2025-52565), the procfs files it writes (CVE-2025-52881). Each test
// points the redirect at a canary file the test made, never at a real
// host file, and checks that the canary is untouched.

// TestSecProcWritesNotRedirected: init writes sysctls and oom_score_adj
// through a procfs it checked, not through the container's /proc, where
// the config's mounts (here binds of a directory holding a symlink, over
// /proc/sys/net/ipv4 and over init's own /proc/1) would send the writes
// to a file of their choosing (in the attack, /proc/sysrq-trigger; here
// canaries). The values land where they belong.
func TestSecProcWritesNotRedirected(t *testing.T) {
	e := newEnv(t)
	root := e.writableRootfs()
	for _, name := range []string{"canary1", "canary2"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte("canary\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sysDir, pidDir := t.TempDir(), t.TempDir()
	if err := os.Symlink("/canary1", filepath.Join(sysDir, "ip_forward")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/canary2", filepath.Join(pidDir, "oom_score_adj")); err != nil {
		t.Fatal(err)
	}
	score := 123
	b := e.bundle([]string{"sleep", "60"}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = root, false
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		s.Process.OOMScoreAdj = &score
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/proc/sys/net/ipv4", Type: "bind", Source: sysDir, Options: []string{"bind"}},
			specs.Mount{Destination: "/proc/1", Type: "bind", Source: pidDir, Options: []string{"bind"}})
	})
	c := e.secCreate(b)
	for _, name := range []string{"canary1", "canary2"} {
		if got, _ := os.ReadFile(filepath.Join(root, name)); string(got) != "canary\n" {
			t.Errorf("/%s, behind a mount over /proc, was written: %q", name, got)
		}
	}
	pid := strconv.Itoa(c.pid)
	if got, _ := os.ReadFile("/proc/" + pid + "/oom_score_adj"); strings.TrimSpace(string(got)) != "123" {
		t.Errorf("init's oom_score_adj is %q, want 123", got)
	}
	out, err := exec.Command("nsenter", "--net=/proc/"+pid+"/ns/net", "cat", "/proc/sys/net/ipv4/ip_forward").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "1" {
		t.Errorf("net.ipv4.ip_forward in the container's network namespace: %q (%v), want 1", out, err)
	}
	// A process exec'd in writes its oom_score_adj through the container's
	// own /proc, checked the same way (the mount over /proc/1 is not on
	// its way).
	e.mustLkc("start", c.id)
	proc := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(proc, []byte(`{"args":["cat","/proc/self/oom_score_adj"],"env":["PATH=/bin"],"cwd":"/","oomScoreAdj":456}`), 0o644)
	if out := e.mustLkc("exec", "--process", proc, c.id); strings.TrimSpace(out) != "456" {
		t.Errorf("exec with oomScoreAdj 456: the process reads %q", out)
	}
}
