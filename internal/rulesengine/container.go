package rulesengine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lkc-containers/lkc/internal/state"
)

// containerPlacement resolves container=ID into the cgroups of the
// running container ID, looked up at every move (a container stops, and
// another may take its id) in the lkc roots the engine serves, the first
// root holding ID winning. An absent or stopped container is an error: the
// process stays where it is, and explain says why.
func (e *Engine) containerPlacement(to placement, id string) error {
	roots := e.containerRoots()
	for _, root := range roots {
		st, err := loadState(root, id)
		if err != nil {
			continue
		}
		if !state.Alive(st.InitPid, st.InitStart) {
			return fmt.Errorf("container %s (root %s) is not running", id, root)
		}
		n := 0
		for h, mnt := range e.mounts {
			for _, dir := range st.CgroupPaths {
				if rel, ok := within(dir, mnt); ok {
					to[h] = rel
					n++
					break
				}
			}
		}
		if n == 0 {
			return fmt.Errorf("container %s (root %s) has no cgroup in this host's hierarchies", id, root)
		}
		return nil
	}
	return fmt.Errorf("no container %s in the lkc roots %s", id, strings.Join(roots, " "))
}

func loadState(root, id string) (*state.State, error) {
	d, err := state.Peek(root, id)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Load()
}

// within returns dir's path inside the hierarchy mounted at mnt.
func within(dir, mnt string) (string, bool) {
	mnt = strings.TrimSuffix(mnt, "/")
	switch {
	case dir == mnt:
		return "/", true
	case strings.HasPrefix(dir, mnt+"/"):
		return dir[len(mnt):], true
	}
	return "", false
}

// containerRoots are the roots searched for container= targets:
// rules.roots, then the roots of the containers the daemon serves.
func (e *Engine) containerRoots() []string {
	e.mu.Lock()
	roots := slices.Clone(e.roots)
	served := e.served
	e.mu.Unlock()
	if served != nil {
		for _, r := range served() {
			if !slices.Contains(roots, r) {
				roots = append(roots, r)
			}
		}
	}
	return roots
}
