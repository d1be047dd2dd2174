package cli

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestGoRuntimeRule runs every command through Main with its body replaced
// by a probe, and checks the runtime it finds: the collector on only for
// the commands that live long or allocate for seconds, two Ps for the
// commands that forward signals, one per CPU for the servers, one for a
// migration, and otherwise the Ps it started with (startProcs here, as a
// shim's GOMAXPROCS=4 gives it), untouched.
func TestGoRuntimeRule(t *testing.T) {
	const startProcs = 3
	gcOn := map[string]bool{"serve": true, "events": true, "migrate": true, "daemon": true, "stats": true, "top": true}
	procs := map[string]int{"run": min(2, runtime.NumCPU()), "exec": min(2, runtime.NumCPU()),
		"serve": runtime.NumCPU(), "events": runtime.NumCPU(), "daemon": runtime.NumCPU(),
		"stats": runtime.NumCPU(), "top": runtime.NumCPU(), "migrate": 1}
	saved := commands
	gcWas, procsWas := debug.SetGCPercent(100), runtime.GOMAXPROCS(0)
	t.Cleanup(func() {
		commands = saved
		debug.SetGCPercent(gcWas)
		runtime.GOMAXPROCS(procsWas)
	})
	root := t.TempDir()
	for name, c := range saved {
		var gotGC, gotProcs int
		probe := c
		probe.run = func(*globals, []string) error {
			gotGC = debug.SetGCPercent(-1)
			debug.SetGCPercent(gotGC)
			gotProcs = runtime.GOMAXPROCS(0)
			return nil
		}
		commands = map[string]command{name: probe}
		runtime.GOMAXPROCS(startProcs)
		if code := Main([]string{"--root", root, name}); code != 0 {
			t.Fatalf("%s: Main returned %d", name, code)
		}
		if (gotGC >= 0) != gcOn[name] {
			t.Errorf("%s ran with GOGC %d, want the collector on: %v", name, gotGC, gcOn[name])
		}
		want := procs[name]
		if want == 0 {
			want = startProcs
		}
		if gotProcs != want {
			t.Errorf("%s ran with GOMAXPROCS %d, want %d", name, gotProcs, want)
		}
	}
}

// TestOnlySetGoRuntimeTunesRuntime keeps the rule in one place: no file of
// the package but goruntime.go changes the collector or the Ps.
func TestOnlySetGoRuntimeTunesRuntime(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if name == "goruntime.go" || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if ok && (sel.Sel.Name == "SetGCPercent" || sel.Sel.Name == "GOMAXPROCS" || sel.Sel.Name == "SetMemoryLimit") {
				t.Errorf("%s: %s set outside goruntime.go; give the command a goRuntime in the command table instead",
					fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}
