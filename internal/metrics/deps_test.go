package metrics

import (
	"os/exec"
	"strings"
	"testing"
)

// Every lkc invocation links this package (the daemon is the same
// binary as `lkc run` and `lkc init`), so it must not bring net/http's
// 59 packages back: their init functions and pages cost every start.
func TestNoHeavyDeps(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the imports with")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		for _, heavy := range []string{"net/http", "crypto/tls", "crypto/x509", "mime", "net/textproto"} {
			if p == heavy || strings.HasPrefix(p, heavy+"/") {
				t.Errorf("internal/metrics imports %s", p)
			}
		}
	}
}
