package network

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

// fakeSysNet makes a /proc/sys/net of disable_ipv6 values by device.
func fakeSysNet(t *testing.T, disabled map[string]string) {
	t.Helper()
	dir := t.TempDir()
	for dev, v := range disabled {
		d := filepath.Join(dir, "ipv6/conf", dev)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "disable_ipv6"), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if disabled == nil {
		os.MkdirAll(filepath.Join(dir, "ipv4"), 0o755) // no ipv6 directory
	}
	old := procSysNet
	procSysNet = dir
	t.Cleanup(func() { procSysNet = old })
}

// TestCheckHostIPv6: a bridge network with an IPv6 gateway is refused in
// one line where IPv6 is disabled for its bridge (its own sysctl, or
// default's before the bridge exists, or no IPv6 at all; all's named when
// set), and passes where it is enabled, also on a bridge enabled after
// all's was set; a network without an IPv6 range or gateway passes.
func TestCheckHostIPv6(t *testing.T) {
	dual := `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge","bridge":"br9","isGateway":true,
		"ipam":{"type":"host-local","ranges":[[{"subnet":"10.9.0.0/24"}],[{"subnet":"fd09::/64"}]]}}]}`
	v4 := `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge","bridge":"br9","isGateway":true,
		"ipam":{"type":"host-local","ranges":[[{"subnet":"10.9.0.0/24"}]]}}]}`
	noGateway := `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge","bridge":"br9",
		"ipam":{"type":"host-local","subnet":"fd09::/64"}}]}`
	for _, tc := range []struct {
		conf     string
		disabled map[string]string
		want     string
	}{
		{dual, map[string]string{"all": "1", "default": "1", "br9": "1"}, "net.ipv6.conf.all.disable_ipv6=1"},
		{dual, map[string]string{"all": "0", "default": "1"}, "net.ipv6.conf.default.disable_ipv6=1"},
		{dual, map[string]string{"all": "1", "default": "1", "br9": "0"}, ""},
		{dual, map[string]string{"default": "0", "br9": "1"}, "net.ipv6.conf.br9.disable_ipv6=1"},
		{dual, map[string]string{"default": "1", "br9": "0"}, ""},
		{dual, nil, "ipv6.disable=1"},
		{dual, map[string]string{"default": "0"}, ""},
		{v4, map[string]string{"default": "1"}, ""},
		{noGateway, map[string]string{"default": "1"}, ""},
	} {
		fakeSysNet(t, tc.disabled)
		list, err := libcni.ConfListFromBytes([]byte(tc.conf))
		if err != nil {
			t.Fatal(err)
		}
		err = checkHostIPv6("n", list)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.disabled, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "network n: its bridge br9 gets an IPv6 gateway address")):
			t.Errorf("%v: error %v, want one naming %s", tc.disabled, err, tc.want)
		}
	}
}
