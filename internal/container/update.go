package container

import (
	"fmt"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/config"
)

// Update changes the cgroup limits of a container that is not stopped, live,
// and records them in its state so `state` and a restore see them. Nil
// fields of r are left as they are.
func Update(root, id string, r *config.Resources) error {
	c, err := load(root, id, true)
	if err != nil {
		return err
	}
	defer c.close()
	if s := c.status(); s == Stopped {
		return wrongState(id, "update", s)
	}
	merged, err := cgroups.Update(c.cgroup(), &c.st.Config.Cgroup.Resources, r)
	if err != nil {
		return fmt.Errorf("updating container %s: %w", id, err)
	}
	c.st.Config.Cgroup.Resources = *merged
	if err := c.dir.Save(c.st); err != nil {
		return fmt.Errorf("updating container %s: limits applied but not recorded: %w", id, err)
	}
	return nil
}
