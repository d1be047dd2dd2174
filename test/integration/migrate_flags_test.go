package integration

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestMigrateBadFlags: a timeout, a round count, a threshold or a rate
// that cannot work is refused in one line naming it: serve does not start
// a receiver every session of which fails (nor makes its bundle
// directory), and migrate asks no target.
func TestMigrateBadFlags(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bundles := filepath.Join(dir, "bundles")
	for _, v := range []string{"0s", "-1s"} {
		serveRefused(e, `--timeout `+v+`: want more than 0`, "serve", "--listen", "127.0.0.1:0", "--token-file", token, "--bundle-dir", bundles, "--timeout", v)
		e.failLkc(`--timeout `+v+`: want more than 0`, "migrate", "--token-file", token, "--timeout", v, "nosuch", "127.0.0.1:9")
		e.failLkc(`--timeout `+v+`: want more than 0`, "migrate", "--all", "--token-file", token, "--timeout", v, "127.0.0.1:9")
	}
	if _, err := os.Stat(bundles); !os.IsNotExist(err) {
		t.Errorf("bundle dir after the refusals: %v", err)
	}
	for _, c := range []struct{ flag, value, want string }{
		{"--max-rounds", "0", "want at least 1"},
		{"--max-rounds", "-3", "want at least 1"},
		{"--converge-bytes", "0", "want at least 1"},
		{"--converge-bytes", "-1", "want at least 1"},
		{"--converge-ratio", "0", "want a number above 0"},
		{"--converge-ratio", "-0.5", "want a number above 0"},
		{"--converge-ratio", "NaN", "want a number above 0"},
		{"--converge-ratio", "+Inf", "want a number above 0"},
		{"--bwlimit", "-5", "want at least 0"},
	} {
		e.failLkc(c.flag+" "+regexp.QuoteMeta(c.value)+": "+c.want, "migrate", "--token-file", token, c.flag, c.value, "nosuch", "127.0.0.1:9")
	}
}

// serveRefused runs an lkc serve that must refuse its flags; one that
// serves instead is stopped after a few seconds and fails the test.
func serveRefused(e *env, want string, args ...string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, e.bin, append([]string{"--root", e.root}, args...)...)
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		e.t.Fatalf("lkc %s still served after 5 s, want an error matching %q; stderr %q", strings.Join(args, " "), want, stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		e.t.Fatalf("lkc %s: %v", strings.Join(args, " "), err)
	}
	e.checkOneLineFailure(result{stderr: stderr.String(), code: ee.ExitCode()}, want, args)
}
