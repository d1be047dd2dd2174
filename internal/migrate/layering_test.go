package migrate

import (
	"go/parser"
	"go/token"
	"strconv"
	"testing"
)

// TestSenderReadsTheContainerThroughItsHandle keeps the sender from
// opening a container's record or cgroups itself: it reads them through
// container.Inspect, which takes the container's lock.
func TestSenderReadsTheContainerThroughItsHandle(t *testing.T) {
	for _, file := range []string{"sender.go", "memory.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			switch path {
			case "github.com/lkc-containers/lkc/internal/state", "github.com/lkc-containers/lkc/internal/cgroups":
				t.Errorf("%s imports %s: read the container through container.Inspect", file, path)
			}
		}
	}
}
