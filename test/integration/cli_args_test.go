package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestCLIExtraArgumentsRefused checks that every subcommand refuses an
// argument it does not take with a one-line error naming it, before it
// does anything: none of them may ignore it silently.
func TestCLIExtraArgumentsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.id()
	b := e.bundle([]string{"true"}, nil)
	token := filepath.Join(t.TempDir(), "token")
	os.WriteFile(token, []byte("0123456789abcdef0123456789abcdef"), 0o600)
	specDir := t.TempDir()
	cases := [][]string{
		{"create", "--bundle", b, id, "extra"},
		{"run", "--bundle", b, id, "extra"},
		{"start", id, "extra"},
		{"state", id, "extra"},
		{"delete", id, "extra"},
		{"delete", "--force", id, "extra"},
		{"kill", id, "KILL", "extra"},
		{"pause", id, "extra"},
		{"resume", id, "extra"},
		{"events", "--stats", id, "extra"},
		{"update", "--pids-limit", "10", id, "extra"},
		{"checkpoint", "--image-path", t.TempDir(), id, "extra"},
		{"restore", "--image-path", t.TempDir(), "--bundle", b, id, "extra"},
		{"list", "extra"},
		{"spec", "--bundle", specDir, "extra"},
		{"features", "extra"},
		{"migrate", "--token-file", token, id, "127.0.0.1:1", "extra"},
		{"serve", "--listen", "127.0.0.1:0", "--token-file", token, "extra"},
	}
	for _, args := range cases {
		e.failLkc(`^lkc: `+args[0]+`: unexpected argument "extra" \(usage: `, args...)
	}
	// After the id, what is not one of the command's flags is an argument.
	e.failLkc(`^lkc: delete: unexpected argument "--bogus"`, "delete", id, "--bogus")
	e.failLkc(`^lkc: delete: flag provided but not defined: -bogus`, "delete", "--bogus", id)
	e.failLkc(`^lkc: start: missing argument`, "start")
	if _, err := os.Stat(filepath.Join(specDir, "config.json")); err == nil {
		t.Errorf("spec with an extra argument wrote %s", filepath.Join(specDir, "config.json"))
	}
	e.assertIDGone(id)
}

// TestCLIFlagsAfterID checks runc's argument order: a command's flags may
// follow the container id (urfave/cli moves them ahead), except for exec
// and ps, where what follows the id belongs to the command and to ps.
func TestCLIFlagsAfterID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "1000"}, nil), id)
	if out := e.mustLkc("exec", id, "echo", "--force", "-d"); out != "--force -d\n" {
		t.Errorf("exec passed its command %q, want %q", out, "--force -d\n")
	}
	if out := e.mustLkc("ps", id, "-o", "pid,comm"); !strings.HasPrefix(strings.TrimSpace(out), "PID COMMAND") || !strings.Contains(out, "sleep") {
		t.Errorf("ps with ps options -o pid,comm: got %q", out)
	}
	var st []map[string]any
	if err := json.Unmarshal([]byte(e.mustLkc("list", "--format", "json")), &st); err != nil || len(st) != 1 {
		t.Errorf("list --format json: %v, %v", st, err)
	}
	e.mustLkc("state", id)
	e.mustLkc("kill", id, "KILL", "--all")
	e.waitStatus(id, "stopped")
	e.mustLkc("delete", id, "--force")
	e.assertIDGone(id)

	// The bug this guards: "delete ID --force" deleted nothing, silently.
	id2 := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "1000"}, nil), id2)
	e.mustLkc("delete", id2, "--force")
	e.assertIDGone(id2)
}

// TestCreateWithoutOCIVersion checks that a config.json without ociVersion
// is accepted, as runc accepts it.
func TestCreateWithoutOCIVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.run([]string{"true"}, func(s *specs.Spec) { s.Version = "" })
	if r.code != 0 {
		t.Fatalf("run without ociVersion: %v", r)
	}
}

// TestCreateHugeConfig checks that a config of several megabytes (5 MiB of
// annotations, 1 MiB of environment: execve takes no more than 2 MiB) runs
// and the process gets all of its environment.
func TestCreateHugeConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.run([]string{"sh", "-c", `echo ${#BIG15}`}, func(s *specs.Spec) {
		for i := range 16 {
			s.Process.Env = append(s.Process.Env, fmt.Sprintf("BIG%d=%s", i, strings.Repeat("e", 64<<10)))
		}
		s.Annotations = map[string]string{"org.example.big": strings.Repeat("a", 5<<20)}
	})
	if r.code != 0 || r.stdout != "65536\n" {
		t.Fatalf("run with a 6 MiB config: %v", r)
	}
}
