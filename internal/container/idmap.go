package container

import (
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/mount"
	"github.com/lkc-containers/lkc/internal/steplog"
)

// idmappedMounts makes the idmapped mounts of cfg (mount.IDMapped), which
// init moves into place: the kernel maps only a detached mount, for a
// caller privileged over its source's file system, which init in the
// container's user namespace is not. They are made before anything of the
// container exists, so a mount the kernel refuses to map fails create with
// nothing to undo.
func idmappedMounts(cfg *config.Config) (Made, error) {
	var at []int
	for i, m := range cfg.Mounts {
		if m.IDMapping != nil {
			at = append(at, i)
		}
	}
	if len(at) == 0 {
		return Made{}, nil
	}
	defer steplog.Step("create: idmapped mounts")()
	var ns mount.UserNSes
	defer ns.Close()
	made := make(map[int]*os.File, len(at))
	for _, i := range at {
		m := cfg.Mounts[i]
		f, err := mount.IDMapped(m, &ns)
		if err != nil {
			for _, f := range made {
				f.Close()
			}
			return Made{}, fmt.Errorf("mount %s on %s: %w", m.Source, m.Destination, err)
		}
		made[i] = f
	}
	return Made{At: at, Wait: func() map[int]*os.File { return made }}, nil
}

// join is m and o together (their indexes apart).
func (m Made) join(o Made) Made {
	if len(o.At) == 0 {
		return m
	}
	if len(m.At) == 0 {
		return o
	}
	return Made{At: append(slices.Clone(m.At), o.At...), Wait: func() map[int]*os.File {
		made := m.Wait()
		maps.Copy(made, o.Wait())
		return made
	}}
}
