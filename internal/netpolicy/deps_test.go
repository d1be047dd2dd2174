package netpolicy

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestLkcLinksNoCilium: the lkc binary, which every runtime call starts,
// must not link cilium/ebpf (33 packages with their init costs); only
// this package's tests use it.
func TestLkcLinksNoCilium(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(gobin, "list", "-deps", "../../cmd/lkc").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/cilium/") {
			t.Errorf("cmd/lkc imports %s", p)
		}
	}
}
