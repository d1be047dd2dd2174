package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// heavy are packages the lkc binary must not link. Every lkc command, and
// the container's own `lkc init`, pays for each package linked: its init
// functions and a larger binary to map and fault in. With net/http (once
// behind the daemon's /metrics: crypto/tls, x509, http2, mime) and
// cilium/ebpf (once behind the network policy: debug/elf, encoding/xml,
// go/parser) linked, `lkc run` took 8.47 ms where it takes 7.03 without
// them (docs/journal/2026-12-06-startup.md).
var heavy = []string{"net/http", "crypto/tls", "crypto/x509", "mime", "net/textproto",
	"github.com/cilium/ebpf", "debug/elf", "debug/dwarf", "encoding/xml", "go/parser"}

func TestBinaryLinksNoHeavyPackages(t *testing.T) {
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("no go command to list the imports with: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		for _, h := range heavy {
			if p == h || strings.HasPrefix(p, h+"/") {
				t.Errorf("lkc links %s", p)
			}
		}
	}
}
