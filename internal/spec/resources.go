package spec

import (
	"encoding/json"
	"fmt"
	"io"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/config"
)

// ParseResources reads a runtime-spec linux.resources object, as `update
// --resources` takes it, into the limits to change: fields it leaves out stay
// nil so an update leaves them alone. It goes through the same conversion and
// checks as config.json. Device rules are dropped, as runc's update drops
// them: the device cgroup is fixed at create.
func ParseResources(r io.Reader) (*config.Resources, error) {
	var res specs.LinuxResources
	if err := json.NewDecoder(r).Decode(&res); err != nil {
		return nil, fmt.Errorf("%w: parsing resources: %v", ErrInvalid, err)
	}
	return ConvertResources(&res)
}

// ConvertResources converts OCI resources to lkc's, as create does.
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
