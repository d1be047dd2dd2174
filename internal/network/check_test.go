package network

import (
	"testing"

	"github.com/containernetworking/cni/libcni"
)

// TestWithoutIdleBandwidth: CHECK without a rate in force leaves out a
// bandwidth plugin with no rate of its own, and keeps one that sets a
// rate in the configuration, and every other plugin.
func TestWithoutIdleBandwidth(t *testing.T) {
	for _, tc := range []struct{ bandwidth, want string }{
		{`{"type":"bandwidth","capabilities":{"bandwidth":true}}`, "bridge firewall"},
		{`{"type":"bandwidth","ingressRate":1000000,"ingressBurst":100000}`, "bridge firewall bandwidth"},
	} {
		list, err := libcni.ConfListFromBytes([]byte(`{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},{"type":"firewall"},` + tc.bandwidth + `]}`))
		if err != nil {
			t.Fatal(err)
		}
		got, err := withoutIdleBandwidth(list)
		if err != nil {
			t.Fatal(err)
		}
		var types string
		for _, p := range got.Plugins {
			types += " " + p.Network.Type
		}
		if types[1:] != tc.want {
			t.Errorf("%s: plugins %q, want %q", tc.bandwidth, types[1:], tc.want)
		}
	}
}
