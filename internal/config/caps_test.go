package config

import (
	"strings"
	"testing"
)

func TestGrantable(t *testing.T) {
	const (
		chown       = 0
		kill        = 5
		setpcap     = 8
		sysResource = 24
	)
	held := CapMask([]int{chown, kill, setpcap}) // CAP_SYS_RESOURCE withheld
	for _, c := range []struct {
		name string
		caps Capabilities
		inh  uint64
		want string // "" means grantable
	}{
		{"held", Capabilities{Bounding: []int{chown, kill}, Effective: []int{kill}, Permitted: []int{chown, kill}}, 0, ""},
		{"ambient not checked", Capabilities{Ambient: []int{sysResource}}, 0, ""},
		{"permitted not held", Capabilities{Permitted: []int{kill, sysResource}}, 0,
			"process.capabilities.permitted: cannot grant CAP_SYS_RESOURCE: the runtime does not hold it"},
		{"effective not held", Capabilities{Effective: []int{sysResource}}, 0,
			"process.capabilities.effective: cannot grant CAP_SYS_RESOURCE"},
		{"effective not permitted", Capabilities{Effective: []int{kill}, Permitted: []int{chown}}, 0,
			"process.capabilities.effective: cannot grant CAP_KILL: it is not in process.capabilities.permitted"},
		{"inheritable in bounding", Capabilities{Bounding: []int{kill}, Inheritable: []int{kill}}, 0, ""},
		{"inheritable already held", Capabilities{Inheritable: []int{sysResource}}, CapMask([]int{sysResource}), ""},
		{"inheritable outside bounding", Capabilities{Bounding: []int{chown}, Inheritable: []int{kill}}, 0,
			"process.capabilities.inheritable: cannot grant CAP_KILL"},
	} {
		err := c.caps.Grantable(held, c.inh)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)):
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}
