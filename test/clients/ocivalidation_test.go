package clients

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// ociKnownDivergences are the cases of runtime-tools' validation programs
// that runc passes and lkc fails on purpose, keyed as ociCases keys them,
// with the reason.
var ociKnownDivergences = map[string]string{
	"linux_ns_path: set mnt namespace by path": "lkc refuses mounts in a joined mount namespace (docs/rootfs.md): " +
		"runc mounts and pivots inside it, which moves the root of that namespace's other processes",
}

// ociRacy are the cases that race the container's own process and so fail
// now and then with runc as well as with lkc on a loaded host: they are
// reported, never failed.
var ociRacy = map[string]string{
	"killsig: `kill` operation MUST send the specified signal to the container process": "the signal may come " +
		"before the shell has set its trap, and pid 1 of a pid namespace ignores a signal it has no handler for",
	"pidfile: create with '--pid-file' option works": "the container runs `true` and kills it after it may have " +
		"exited; `kill` of a stopped container MUST fail (runtime.md, kill)",
}

// ociMinRuncPasses is well under what runc passes on this host (about
// 3100 cases): fewer means the suite did not run.
const ociMinRuncPasses = 2000

// ociRetries is how many times a program is run again when lkc fails a
// case runc passes: some programs race their own steps (a kill against a
// `true` that may have exited, a signal against a shell that may not have
// set its trap yet), so a case counts as failed only when it fails every
// time.
const ociRetries = 2

// TestOCIValidation runs the OCI runtime conformance programs of
// opencontainers/runtime-tools (scripts/oci-validation) with runc and with
// lkc, and fails for every case runc passes and lkc does not.
func TestOCIValidation(t *testing.T) {
	requireSetup(t)
	want := map[string][]string{}
	total := 0
	for prog, run := range ociValidation(t, "/usr/sbin/runc") {
		want[prog] = run.passed()
		total += len(want[prog])
	}
	if total < ociMinRuncPasses {
		t.Fatalf("runc passed only %d cases (want at least %d): the suite did not run", total, ociMinRuncPasses)
	}
	failed := ociFailed(want, ociValidation(t, lkcBinary))
	for try := 0; try < ociRetries && len(failed) > 0; try++ {
		failed = ociFailed(ociKeys(failed), ociValidation(t, lkcBinary, sortedKeys(failed)...))
	}
	for _, prog := range sortedKeys(failed) {
		f := failed[prog]
		for _, c := range f.cases {
			name := prog + ": " + tapOccurrence.ReplaceAllString(c, "")
			if why, ok := ociKnownDivergences[name]; ok {
				t.Logf("%s: %s: fails with lkc, passes with runc, known: %s", prog, c, why)
				continue
			}
			if why, ok := ociRacy[name]; ok {
				t.Logf("%s: %s: fails with lkc, passed once with runc, racy: %s", prog, c, why)
				continue
			}
			t.Errorf("%s: %q passes with runc, fails with lkc:\n%s", prog, c, f.run.excerpt(c))
		}
	}
}

// ociRun is one program's TAP and stderr and, by case, whether it passed.
type ociRun struct {
	tap, stderr string
	cases       map[string]bool
}

type ociRuns map[string]ociRun

// ociValidation runs scripts/oci-validation with the runtime (all programs,
// or progs) and reads each program's TAP.
func ociValidation(t *testing.T, runtime string, progs ...string) ociRuns {
	t.Helper()
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	args := append([]string{runtime, out}, progs...)
	cmd := exec.CommandContext(ctx, filepath.Join(repo, "scripts", "oci-validation"), args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/oci-validation %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	taps, err := filepath.Glob(filepath.Join(out, "*.tap"))
	if err != nil || len(taps) == 0 {
		t.Fatalf("scripts/oci-validation %s wrote no TAP (%v)", runtime, err)
	}
	runs := ociRuns{}
	for _, f := range taps {
		tap, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		stderr, _ := os.ReadFile(strings.TrimSuffix(f, ".tap") + ".err")
		rc, _ := os.ReadFile(strings.TrimSuffix(f, ".tap") + ".rc")
		runs[strings.TrimSuffix(filepath.Base(f), ".tap")] = ociRun{string(tap), string(stderr), ociCases(string(tap), string(rc))}
	}
	return runs
}

var (
	tapResult     = regexp.MustCompile(`^(not )?ok \d+(?: - (.*))?$`)
	tapNumber     = regexp.MustCompile(`\d+`)
	tapAnyResult  = regexp.MustCompile(`(?m)^(not )?ok \d+`)
	tapOccurrence = regexp.MustCompile(` #\d+$`)
)

// ociCases reads a program's TAP and exit code: whether each case passed,
// keyed by its description with the numbers made N (they name temporary
// files) and, from its second appearance on, " #n". Skipped cases are left
// out. Two cases are the program's own: that it
// exited 0 and, for a program without numbered cases (the hook programs
// report errors only as a diagnostic block), that it reported no error.
func ociCases(tap, rc string) map[string]bool {
	cases := map[string]bool{ociExitCase: strings.TrimSpace(rc) == "0"}
	if !tapAnyResult.MatchString(tap) {
		cases[ociNoErrorCase] = !strings.Contains(tap, "\n  ---\n")
	}
	for _, line := range strings.Split(tap, "\n") {
		m := tapResult.FindStringSubmatch(line)
		if m == nil || strings.Contains(line, "# SKIP") {
			continue
		}
		desc := tapNumber.ReplaceAllString(m[2], "N")
		key := desc
		for n := 2; ; n++ {
			if _, seen := cases[key]; !seen {
				break
			}
			key = fmt.Sprintf("%s #%d", desc, n)
		}
		cases[key] = m[1] == ""
	}
	return cases
}

const (
	ociExitCase    = "(the program exits 0)"
	ociNoErrorCase = "(no error reported)"
)

// passed lists the cases the run passed.
func (r ociRun) passed() []string {
	var out []string
	for c, ok := range r.cases {
		if ok {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// excerpt is the TAP of the run's failures with case c's description (the
// result lines and their diagnostics), or the program's whole TAP and
// stderr when none has it (the program stopped before reaching it).
func (r ociRun) excerpt(c string) string {
	desc := tapOccurrence.ReplaceAllString(c, "")
	var b strings.Builder
	in := false
	for _, line := range strings.Split(r.tap, "\n") {
		if m := tapResult.FindStringSubmatch(line); m != nil {
			in = m[1] != "" && tapNumber.ReplaceAllString(m[2], "N") == desc
		}
		if in {
			b.WriteString(line + "\n")
		}
	}
	if b.Len() == 0 {
		return r.tap + "stderr:\n" + r.stderr
	}
	return b.String()
}

// ociFailure is the cases of one program that a run did not pass.
type ociFailure struct {
	run   ociRun
	cases []string
}

type ociFailures map[string]ociFailure

// ociKeys lists the failed cases by program, to run the programs again.
func ociKeys(failed ociFailures) map[string][]string {
	keys := map[string][]string{}
	for prog, f := range failed {
		keys[prog] = f.cases
	}
	return keys
}

// ociFailed returns, by program, the cases of want that got does not pass,
// with got's runs for the report.
func ociFailed(want map[string][]string, got ociRuns) ociFailures {
	failed := ociFailures{}
	for prog, cases := range want {
		for _, c := range cases {
			if !got[prog].cases[c] {
				f := failed[prog]
				f.run = got[prog]
				f.cases = append(f.cases, c)
				failed[prog] = f
			}
		}
	}
	return failed
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
