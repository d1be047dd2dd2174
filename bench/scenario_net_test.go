package main

import (
	"encoding/json"
	"slices"
	"testing"
)

// TestBenchNetworkConflist: lkc's and Podman's networks of the run-net
// scenario run the same plugins; the IPv4-only ones have one range.
func TestBenchNetworkConflist(t *testing.T) {
	for _, n := range []benchNetwork{lkcNet, podmanNet, lkcNet4, podmanNet4, rateNet} {
		var conf struct {
			Name    string
			Plugins []struct {
				Type string
				IPAM struct {
					Ranges [][]map[string]string
				}
			}
		}
		if err := json.Unmarshal([]byte(n.conflist("/tmp/ipam")), &conf); err != nil {
			t.Fatalf("network %s: %v", n.name, err)
		}
		var types []string
		for _, p := range conf.Plugins {
			types = append(types, p.Type)
		}
		if conf.Name != n.name || !slices.Equal(types, []string{"bridge", "portmap", "firewall", "bandwidth"}) {
			t.Errorf("network %s: name %q, plugins %v", n.name, conf.Name, types)
		}
		want := 2
		if n.subnet6 == "" {
			want = 1
		}
		if got := len(conf.Plugins[0].IPAM.Ranges); got != want {
			t.Errorf("network %s: %d ranges, want %d", n.name, got, want)
		}
	}
}
