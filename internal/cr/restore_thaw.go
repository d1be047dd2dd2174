package cr

import (
	"fmt"
	"os"
	"path/filepath"
)

// frozenByLkcFile marks images of a container that was running at the
// dump. lkc freezes such a container itself before CRIU starts (see
// freezeForDump), so CRIU, which records the freezer state it found
// before its own freeze, saves it as frozen: a restore that applies the
// images' cgroup properties (--manage-cgroups-mode full) would freeze the
// restored container, and it would come back paused. The restore thaws
// it instead (thawFrozenByDump), as it comes back when CRIU froze it.
const frozenByLkcFile = "lkc-frozen-for-dump"

// markFrozenByLkc writes frozenByLkcFile when lkc froze the container.
func markFrozenByLkc(imageDir string, froze bool) error {
	if !froze {
		return nil
	}
	if err := os.WriteFile(filepath.Join(imageDir, frozenByLkcFile), nil, 0o600); err != nil {
		return fmt.Errorf("recording the freeze: %w", err)
	}
	return nil
}

// thawFrozenByDump thaws the restored tasks when only lkc's freeze for
// the dump froze them: a paused container's images keep it paused.
func (p *restorePlan) thawFrozenByDump() error {
	if p.t.Frozen {
		return nil // it is to stay frozen (freezeTasks)
	}
	if _, err := os.Stat(filepath.Join(p.dirs.imagePath, frozenByLkcFile)); err != nil {
		return nil
	}
	cg := p.b.Cgroup()
	if frozen, err := cg.Frozen(); err != nil || !frozen {
		return err
	}
	if err := cg.Thaw(); err != nil {
		return fmt.Errorf("thawing the restored container: %w", err)
	}
	return nil
}
