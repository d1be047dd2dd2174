package container

import (
	"encoding/json"
	"fmt"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
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
	cur := &c.st.Config.Cgroup.Resources
	r = withMemoryPair(cur, r)
	merged, err := mergeResources(cur, r)
	if err != nil {
		return err
	}
	if merged.SwapBelowMemory() {
		return fmt.Errorf("updating container %s: memory+swap limit %d is below the memory limit %d", id, *merged.MemorySwap, *merged.MemoryLimit)
	}
	if err := checkBeforeUpdate(c.cgroup(), merged, r); err != nil {
		return fmt.Errorf("updating container %s: %w", id, err)
	}
	if err := setResources(c.cgroup(), r); err != nil {
		return fmt.Errorf("updating container %s: %w", id, err)
	}
	c.st.Config.Cgroup.Resources = *merged
	if err := c.dir.Save(c.st); err != nil {
		return fmt.Errorf("updating container %s: limits applied but not recorded: %w", id, err)
	}
	return nil
}

// withMemoryPair completes a change of only one of memory and memory+swap
// with the recorded other one: v2 derives memory.swap.max from the two, and
// unlimited memory without a swap value means unlimited swap too, as runc
// does it.
func withMemoryPair(cur, r *config.Resources) *config.Resources {
	out := *r
	switch {
	case r.MemoryLimit != nil && *r.MemoryLimit == -1 && r.MemorySwap == nil:
		unlimited := int64(-1)
		out.MemorySwap = &unlimited
	case r.MemoryLimit != nil && r.MemorySwap == nil:
		out.MemorySwap = cur.MemorySwap
	case r.MemorySwap != nil && r.MemoryLimit == nil:
		out.MemoryLimit = cur.MemoryLimit
	}
	return &out
}

// mergeResources returns cur with the fields r sets replaced. It goes
// through JSON, whose omitempty fields are exactly the unset ones, so
// fields added to config.Resources later merge without changes here.
func mergeResources(cur, r *config.Resources) (*config.Resources, error) {
	merged := &config.Resources{}
	for _, from := range []*config.Resources{cur, r} {
		// Decoding into a fresh value copies, so cur's pointers stay its own.
		data, err := json.Marshal(from)
		if err == nil {
			err = json.Unmarshal(data, merged)
		}
		if err != nil {
			return nil, fmt.Errorf("merging resources: %w", err)
		}
	}
	return merged, nil
}

// checkBeforeUpdate refuses, when the container asked for it (runc's
// memory.checkBeforeUpdate), a memory limit below what it uses now, which
// would make the kernel reclaim or OOM-kill at once.
func checkBeforeUpdate(cg cgroups.Manager, merged, r *config.Resources) error {
	if !merged.MemoryCheckBeforeUpdate || r.MemoryLimit == nil || *r.MemoryLimit < 0 {
		return nil
	}
	s, err := cg.Stats()
	if err != nil {
		return err
	}
	if use := s.Memory.Usage.Usage; uint64(*r.MemoryLimit) < use {
		return fmt.Errorf("memory limit %d is below the current usage %d (memory.checkBeforeUpdate)", *r.MemoryLimit, use)
	}
	return nil
}

// setResources applies r. On v1 the kernel refuses a memory.limit above
// memory.memsw.limit at every step, so when both change the one that grows
// is written first: swap before memory when memory rises, memory before
// swap when it falls.
func setResources(cg cgroups.Manager, r *config.Resources) error {
	if _, v2 := cgroupfs.V2Dir(cg.Paths()); v2 || r.MemoryLimit == nil || r.MemorySwap == nil {
		return cg.Set(r)
	}
	swap := &config.Resources{MemorySwap: r.MemorySwap}
	rest := *r
	rest.MemorySwap = nil
	first, second := &rest, swap
	if memoryRises(cg, *r.MemoryLimit) {
		first, second = swap, &rest
	}
	if err := cg.Set(first); err != nil {
		return err
	}
	return cg.Set(second)
}

func memoryRises(cg cgroups.Manager, limit int64) bool {
	if limit < 0 {
		return true
	}
	s, err := cg.Stats()
	return err != nil || uint64(limit) > s.Memory.Usage.Limit
}
