package container

import (
	"fmt"
)

// Pause freezes every process of a running container.
func Pause(root, id string) error {
	c, err := load(root, id, true)
	if err != nil {
		return err
	}
	defer c.close()
	if s := c.status(); s != Running {
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

// Processes returns the host pids of every process in the container.
func Processes(root, id string) ([]int, error) {
	c, err := load(root, id, false)
	if err != nil {
		return nil, err
	}
	defer c.close()
	if s := c.status(); s == Stopped {
		return nil, wrongState(id, "list processes of", s)
	}
	pids, err := c.cgroup().Procs()
	if err != nil {
		return nil, fmt.Errorf("listing processes of %s: %w", id, err)
	}
	return pids, nil
}
