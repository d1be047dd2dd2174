package network

import (
	"slices"
	"testing"
)

// TestMasqChain: the chain is the bridge plugin's name for the network and
// container (sha512sum of "netabc123", its first 24 hex digits).
func TestMasqChain(t *testing.T) {
	if got, want := masqChain("net", "abc123"), "CNI-50e03cbdad5255f6f8ba41de"; got != want {
		t.Errorf("masqChain = %q, want %q", got, want)
	}
}

func TestSplitRule(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{`-A POSTROUTING -s 10.1.2.3/32 -m comment --comment "name: \"net\" id: \"ab\"" -j CNI-0123`,
			[]string{"-A", "POSTROUTING", "-s", "10.1.2.3/32", "-m", "comment", "--comment", `name: "net" id: "ab"`, "-j", "CNI-0123"}},
		{`-P POSTROUTING ACCEPT`, []string{"-P", "POSTROUTING", "ACCEPT"}},
		{`-A X --comment ""`, []string{"-A", "X", "--comment", ""}},
		{``, nil},
	} {
		if got := splitRule(tc.line); !slices.Equal(got, tc.want) {
			t.Errorf("splitRule(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
	if !jumpsTo(splitRule(`-A POSTROUTING -s 10.1.2.3/32 -j CNI-0123`), "CNI-0123") || jumpsTo([]string{"-A", "POSTROUTING", "-j", "CNI-0124"}, "CNI-0123") {
		t.Error("jumpsTo took a jump for another")
	}
}
