package codegen

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// directive is one //go:generate line that runs lkc-codegen.
type directive struct {
	dir, file string
	args      []string
}

// directives finds the //go:generate lines of the module that run
// lkc-codegen.
func directives(t *testing.T) []directive {
	t.Helper()
	l, err := newLoader(".")
	if err != nil {
		t.Fatal(err)
	}
	var found []directive
	err = filepath.WalkDir(l.modRoot, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && (e.Name() == "testdata" || strings.HasPrefix(e.Name(), ".")) && path != l.modRoot {
			return filepath.SkipDir
		}
		if e.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			words := strings.Fields(sc.Text())
			if len(words) > 3 && words[0] == "//go:generate" && words[1] == "go" && words[2] == "run" &&
				strings.HasSuffix(words[3], "cmd/lkc-codegen") {
				found = append(found, directive{dir: filepath.Dir(path), file: path, args: words[4:]})
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestGeneratedFilesAreCurrent fails when a committed generated file is not
// what its //go:generate line makes of the types today (a field added to a
// type without `go generate ./...`, or a generated file edited by hand).
func TestGeneratedFilesAreCurrent(t *testing.T) {
	ds := directives(t)
	if len(ds) == 0 {
		t.Fatal("found no //go:generate line that runs lkc-codegen")
	}
	for _, d := range ds {
		name, want, err := Run(d.dir, d.args)
		if err != nil {
			t.Errorf("%s: %v", d.file, err)
			continue
		}
		path := filepath.Join(d.dir, name)
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v (run go generate ./...)", d.file, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go generate ./...", path)
		}
	}
}

func TestRunRefusesWhatItCannotGenerate(t *testing.T) {
	for name, args := range map[string][]string{
		"no codec":      {"-out", "x_gen.go", "State"},
		"unknown codec": {"-codec", "xml", "-out", "x_gen.go", "State"},
		"no root":       {"-codec", "json", "-out", "x_gen.go"},
		"unknown type":  {"-codec", "json", "-out", "x_gen.go", "NoSuchType"},
		"not a struct":  {"-codec", "json", "-out", "x_gen.go", "kind"},
		"interface":     {"-codec", "json", "-out", "x_gen.go", "github.com/opencontainers/runtime-spec/specs-go.Windows"},
	} {
		if _, _, err := Run(".", args); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
