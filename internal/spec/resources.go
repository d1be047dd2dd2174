package spec

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/config"
)

// ConvertResources converts the linux.resources object `update --resources`
// takes into the limits to change, with the conversion and checks of
// config.json: fields it leaves out stay nil, so an update leaves them
// alone. Device rules are dropped, as runc's update drops them: the device
// cgroup is fixed at create.
func ConvertResources(r *specs.LinuxResources) (*config.Resources, error) {
	s := &specs.Spec{Linux: &specs.Linux{Resources: r}}
	c := &config.Config{ID: "update"}
	if err := convertCgroup(s, c); err != nil {
		return nil, err
	}
	res := c.Cgroup.Resources
	res.Devices = nil
	return &res, nil
}
