package container

import (
	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/state"
)

// Handle is a container for the operations above this package that work
// on one without being lifecycle steps (cr's checkpoint, migrate's sender):
// its record and status read under the container's lock, and the few
// things those operations do to it. They never open the record or the
// cgroups themselves, so the locking stays this package's.
type Handle struct {
	c      *Container
	status string
	held   bool
}

// Hold loads container id under its exclusive lock, waiting for another
// command that holds it, and keeps the lock until Release or Destroy: no
// other command changes the container meanwhile.
func Hold(root, id string) (*Handle, error) {
	c, err := load(root, id, true)
	if err != nil {
		return nil, err
	}
	return &Handle{c: c, status: c.status(), held: true}, nil
}

// Inspect reads container id's record and derives its status under one
// shared lock, waiting for a command that holds the lock exclusively (an
// update, a checkpoint, a delete), so the two agree: a container deleted
// or stopped meanwhile is seen as such. The lock is let go before Inspect
// returns; the handle is a copy, for reading.
func Inspect(root, id string) (*Handle, error) {
	c, err := load(root, id, false)
	if err != nil {
		return nil, err
	}
	defer c.close()
	return &Handle{c: c, status: c.status()}, nil
}

// MarkDumping marks a held container as being checkpointed
// (state.Dir.MarkDumping), so that a delete --force waits for the
// checkpoint instead of killing tasks CRIU holds; the returned function
// removes the mark.
func (h *Handle) MarkDumping() (func(), error) { return h.c.dir.MarkDumping() }

// Status is the container's status when the handle was made.
func (h *Handle) Status() string { return h.status }

// ID is the container's id.
func (h *Handle) ID() string { return h.c.st.ID }

// Pid is the container's init as recorded (0 before it had one).
func (h *Handle) Pid() int { return h.c.st.InitPid }

// Config is the container's configuration as recorded, `lkc update`s
// included. Read only.
func (h *Handle) Config() *config.Config { return h.c.st.Config }

// Bundle is the bundle the container was made from.
func (h *Handle) Bundle() string { return h.c.st.Bundle }

// Rootfs is the container's root filesystem on the host.
func (h *Handle) Rootfs() string { return h.c.st.Rootfs }

// CgroupPaths are the container's cgroup directories by hierarchy. Read
// only.
func (h *Handle) CgroupPaths() map[string]string { return h.c.st.CgroupPaths }

// Record is a copy of the container's record; its maps, slices and
// pointers are the record's own. Read only.
func (h *Handle) Record() state.State { return *h.c.st }

// Cgroup manages the container's cgroups (freeze, thaw, procs).
func (h *Handle) Cgroup() cgroups.Manager { return h.c.cgroup() }

// FlatCgroups says whether every process of the container sits in its own
// cgroups, none in a sub-cgroup (asked of the cgroups now).
func (h *Handle) FlatCgroups() bool { return cgroups.Flat(h.c.st.CgroupPaths) }

// DumpBytes is about what a dump of the container's memory writes now,
// in bytes: its cgroup's use less the page cache of files (which CRIU
// does not write; their pages are on their filesystems), with shared
// memory (tmpfs, shmem; counted in the cache) and swap added back. 0
// when the cgroups do not say.
func (h *Handle) DumpBytes() int64 {
	st, err := h.c.cgroup().Stats()
	if err != nil {
		return 0
	}
	m := st.Memory
	// v1's memory.stat counts sub-cgroups (exec --cgroup) in total_*.
	cache, shmem := m.Cache, m.Raw["shmem"]
	if v, ok := m.Raw["total_cache"]; ok {
		cache, shmem = v, m.Raw["total_shmem"]
	}
	n := m.Usage.Usage - min(cache, m.Usage.Usage) + shmem
	if m.Swap.Usage > m.Usage.Usage {
		n += m.Swap.Usage - m.Usage.Usage
	}
	return int64(n)
}

// StateDir is the container's state directory, where an operation keeps
// its staging mounts (mount.Staging*), which a delete releases.
func (h *Handle) StateDir() string { return h.c.dir.Path() }

// Release lets go of a held container.
func (h *Handle) Release() {
	if h.held {
		h.held = false
		h.c.close()
	}
}

// Destroy deletes a held container whose processes are gone or may be
// killed (a dump that stopped it): poststop hooks, cgroups, staging mounts,
// record, as delete does.
func (h *Handle) Destroy() error {
	h.held = false
	return h.c.destroy()
}
