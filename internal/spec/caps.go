package spec

import (
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/config"
)

// CapabilityNames returns every capability name lkc knows, for `features`.
func CapabilityNames() []string {
	return append([]string(nil), config.CapNames...)
}

// capNumbers converts capability names (with or without CAP_), skipping
// those lkc does not know: like runc, so that a profile written for a newer
// kernel still works here. UnknownCapabilities names them for a warning.
func capNumbers(names []string) []int {
	nums := make([]int, 0, len(names))
	for _, name := range names {
		if n := capNumber(name); n >= 0 {
			nums = append(nums, n)
		}
	}
	return nums
}

// UnknownCapabilities lists the capability names of caps (which may be nil)
// that lkc ignores because it does not know them, each once.
func UnknownCapabilities(caps *specs.LinuxCapabilities) []string {
	if caps == nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, set := range [][]string{caps.Bounding, caps.Effective, caps.Inheritable, caps.Permitted, caps.Ambient} {
		for _, name := range set {
			if capNumber(name) < 0 && !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	return out
}

func capNumber(name string) int {
	name = strings.ToUpper(name)
	if !strings.HasPrefix(name, "CAP_") {
		name = "CAP_" + name
	}
	for i, n := range config.CapNames {
		if n == name {
			return i
		}
	}
	return -1
}
