package container

import (
	"errors"
	"fmt"
	"io/fs"
)

// Pause freezes every process of a running or, as in runc, created
// container; a created one is created again once resumed.
func Pause(root, id string) error {
	c, err := load(root, id, true)
	if err != nil {
		return err
	}
	defer c.close()
	if s := c.status(); s != Running && s != Created {
		return wrongState(id, "pause", s)
	}
	if err := c.cgroup().Freeze(); err != nil {
		return fmt.Errorf("pausing container %s: %w", id, err)
	}
	return nil
}

// Resume thaws a paused container.
func Resume(root, id string) error {
	c, err := load(root, id, true)
	if err != nil {
		return err
	}
	defer c.close()
	if s := c.status(); s != Paused {
		return wrongState(id, "resume", s)
	}
	if err := c.cgroup().Thaw(); err != nil {
		return fmt.Errorf("resuming container %s: %w", id, err)
	}
	return nil
}

// Processes returns the host pids of every process in the container. A
// stopped container's are those left in its cgroup (none once the cgroup
// is gone), as runc lists them: processes can outlive init, and `kill
// --all` signals them there too.
func Processes(root, id string) ([]int, error) {
	c, err := load(root, id, false)
	if err != nil {
		return nil, err
	}
	defer c.close()
	pids, err := c.cgroup().Procs()
	if errors.Is(err, fs.ErrNotExist) && c.status() == Stopped {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing processes of %s: %w", id, err)
	}
	return pids, nil
}
