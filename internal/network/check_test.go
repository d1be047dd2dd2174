package network

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
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

// TestPortmapFault: portmap 1.1.1's CHECK failures seen on this host
// (containernetworking/plugins#819) are told as its fault; a rule missing
// in the family of its address is a failure of the container's.
func TestPortmapFault(t *testing.T) {
	v4 := &current.IPConfig{Address: net.IPNet{IP: net.ParseIP("10.1.2.3"), Mask: net.CIDRMask(24, 32)}}
	v6 := &current.IPConfig{Address: net.IPNet{IP: net.ParseIP("fd00::3"), Mask: net.CIDRMask(64, 128)}}
	dual := &current.Result{IPs: []*current.IPConfig{v4, v6}}
	only4 := &current.Result{IPs: []*current.IPConfig{v4}}
	only6 := &current.Result{IPs: []*current.IPConfig{v6}}
	for _, tc := range []struct {
		msg   string
		res   *current.Result
		fault bool
	}{
		{`could not check ipv6 dnat: rule [[-p tcp --dport 8080 -s 10.1.2.3/24 -j CNI-HOSTPORT-SETMARK] [-p tcp --dport 8080 -j DNAT --to-destination 10.1.2.3:80]] in chain CNI-DN-x not found in table nat`, dual, true},
		{`could not check ipv6 dnat: chain CNI-DN-x not found in iptables table nat`, only4, true},
		{`could not check ipv4 dnat: chain CNI-DN-x not found in iptables table nat`, only6, true},
		{`could not check ipv4 dnat: rule [[-p tcp --dport 8080 -j DNAT --to-destination 10.1.2.3:80]] in chain CNI-DN-x not found in table nat`, dual, false},
		{`could not check ipv6 dnat: rule [[-p tcp --dport 8080 -j DNAT --to-destination [fd00::3]:80]] in chain CNI-DN-x not found in table nat`, dual, false},
		{`could not check ipv4 dnat: chain CNI-DN-x not found in iptables table nat`, only4, false},
		{`could not check ipv6 dnat: chain CNI-DN-x not found`, nil, false},
	} {
		if got := portmapFault(tc.msg, tc.res); got != tc.fault {
			t.Errorf("portmapFault(%q) = %v, want %v", tc.msg, got, tc.fault)
		}
	}
	err := checkError("portmap", errors.New("could not check ipv6 dnat: chain CNI-DN-x not found in iptables table nat"), only4)
	if want := `plugin type="portmap" failed (check): a known fault of portmap 1.1.1 (containernetworking/plugins#819`; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("checkError = %q, want it to begin %q", err, want)
	}
	if err := checkError("firewall", errors.New("could not check ipv6 dnat"), only4); err.Error() != `plugin type="firewall" failed (check): could not check ipv6 dnat` {
		t.Errorf("checkError of another plugin = %q", err)
	}
}
