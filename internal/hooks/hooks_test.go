package hooks

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/config"
)

func sh(script string, env ...string) config.Hook {
	return config.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", script}, Env: env}
}

func TestRunFeedsStateArgsAndEnv(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	state := []byte(`{"ociVersion":"1.2.1","id":"c1","status":"creating","pid":42}`)
	h := sh(`cat > "$OUT"; echo "$0 $1 HOME=$HOME" >> "$OUT"`, "OUT="+out)
	h.Args = append(h.Args, "arg0", "arg1")
	if err := Run(CreateRuntime, []config.Hook{h}, state); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// HOME is empty: the hook gets its env and nothing of ours.
	if want := string(state) + "arg0 arg1 HOME=\n"; string(got) != want {
		t.Fatalf("hook wrote %q, want %q", got, want)
	}
}

func TestRunFailureNamesHookAndStops(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "marker")
	hs := []config.Hook{
		sh("echo first line >&2; echo second line >&2; exit 3"),
		sh("touch " + marker),
	}
	err := Run(CreateContainer, hs, nil)
	if err == nil {
		t.Fatal("a failing hook succeeded")
	}
	want := "createContainer hook #0 /bin/sh: exit status 3: first line second line"
	if err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the hook after a failure ran: %v", err)
	}
}

func TestRunTimeoutKills(t *testing.T) {
	// The background sleep holds stderr open: the hook's whole group dies.
	h := sh("sleep 30 & sleep 30")
	h.Timeout = 1
	start := time.Now()
	err := Run(Prestart, []config.Hook{h}, nil)
	if err == nil || !strings.Contains(err.Error(), "prestart hook #0 /bin/sh: timed out after 1s") {
		t.Fatalf("error %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a 1s timeout took %v", d)
	}
}

func TestRunMissingProgram(t *testing.T) {
	err := Run(StartContainer, []config.Hook{{Path: "/no/such/hook"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "startContainer hook #0 /no/such/hook") {
		t.Fatalf("error %v", err)
	}
}

func TestRunAllWarnsAndGoesOn(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "marker")
	var warnings []error
	RunAll(Poststop, []config.Hook{sh("exit 1"), sh("touch " + marker)}, nil,
		func(err error) { warnings = append(warnings, err) })
	if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "poststop hook #0") {
		t.Fatalf("warnings %v, want one for hook #0", warnings)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the hook after a failure did not run: %v", err)
	}
}
