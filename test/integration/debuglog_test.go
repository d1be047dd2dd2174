package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// debugLog reads a --log-format json file: every line must be a JSON
// object with level, msg and time, as runc writes them. It returns the
// duration of each step logged and the debug messages.
func debugLog(t *testing.T, path string) (steps map[string]time.Duration, msgs []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	steps = map[string]time.Duration{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var entry map[string]string
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if entry["level"] == "" || entry["msg"] == "" || entry["time"] == "" {
			t.Errorf("log line %q lacks level, msg or time", line)
		}
		if _, err := time.Parse(time.RFC3339Nano, entry["time"]); err != nil {
			t.Errorf("log line %q: time: %v", line, err)
		}
		if entry["level"] == "debug" {
			msgs = append(msgs, entry["msg"])
		}
		if step := entry["step"]; step != "" {
			d, err := time.ParseDuration(entry["duration"])
			if err != nil || d <= 0 {
				t.Errorf("log line %q: step without a duration: %v", line, err)
			}
			steps[step] = d
		}
	}
	return steps, msgs
}

func wantSteps(t *testing.T, what string, steps map[string]time.Duration, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, ok := steps[n]; !ok {
			t.Errorf("%s: no step %q logged; steps: %v", what, n, steps)
		}
	}
}

// TestDebugLogSteps checks that --debug logs each step of create, start
// and delete with its duration, in runc's json log lines, and that
// without --debug nothing is logged.
func TestDebugLogSteps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := t.TempDir()
	id := e.id()
	b := e.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{shHook("true")}}
	})
	quiet := filepath.Join(dir, "quiet.json")
	e.mustLkc("--log", quiet, "--log-format", "json", "list")
	if data, _ := os.ReadFile(quiet); len(data) != 0 {
		t.Errorf("without --debug the log got %q", data)
	}
	for _, cmd := range [][]string{
		{"create", "--bundle", b, id}, {"start", id}, {"delete", "--force", id},
	} {
		logf := filepath.Join(dir, cmd[0]+".json")
		e.mustLkc(append([]string{"--debug", "--log", logf, "--log-format", "json"}, cmd...)...)
		steps, msgs := debugLog(t, logf)
		if len(msgs) == 0 || !strings.HasPrefix(msgs[0], cmd[0]+" ") {
			t.Errorf("%s: first debug line %q, want the command line", cmd[0], msgs)
		}
		switch cmd[0] {
		case "create":
			wantSteps(t, "create", steps, "load config", "create", "create: cgroup", "create: start init",
				"create: init namespaces and config", "create: init rootfs and hooks", "create: prestart and createRuntime hooks")
		case "start":
			wantSteps(t, "start", steps, "start")
		case "delete":
			wantSteps(t, "delete", steps, "delete", "delete: kill processes", "delete: remove cgroup")
		}
	}
	e.assertIDGone(id)
}

// TestDebugLogCriu checks that --debug logs, for checkpoint and restore,
// the CRIU command line, the options of the swrk request and how long
// CRIU took.
func TestDebugLogCriu(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	dir := t.TempDir()
	id, root := e.ckptCounter(nil)
	b := bundleOf(e, id)
	images := filepath.Join(dir, "images")
	ckpt, rst := filepath.Join(dir, "checkpoint.json"), filepath.Join(dir, "restore.json")
	e.mustLkc("--debug", "--log", ckpt, "--log-format", "json", "checkpoint", "--image-path", images, id)
	saved := readCount(t, root)
	e.mustLkc("--debug", "--log", rst, "--log-format", "json", "restore", "-d", "--bundle", b, "--image-path", images, id)
	waitCount(t, root, saved+1)
	for _, c := range []struct{ log, typ, step string }{{ckpt, "dump", "checkpoint"}, {rst, "restore", "restore"}} {
		steps, msgs := debugLog(t, c.log)
		wantSteps(t, c.typ, steps, c.step, "criu "+c.typ)
		var cmdline, opts bool
		for _, m := range msgs {
			cmdline = cmdline || strings.HasPrefix(m, "criu "+c.typ+": command line ") && strings.Contains(m, " swrk 3")
			if raw, ok := strings.CutPrefix(m, "criu "+c.typ+": swrk request options "); ok {
				var o map[string]any
				opts = json.Unmarshal([]byte(raw), &o) == nil && o["ImagesDirFd"] != nil
			}
		}
		if !cmdline || !opts {
			t.Errorf("%s: want CRIU's command line and request options in the debug log, got %q", c.typ, msgs)
		}
	}
}
