package cgroups

import (
	"encoding/json"
	"fmt"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
	"github.com/lkc-containers/lkc/internal/config"
)

// Update changes the limits of the cgroup m, whose limits are now cur, to
// those r sets (nil fields stay as they are), and returns the merged
// limits to record. Containers (`lkc update`) and resource groups (`lkc
// group update`) both go through it, so they refuse and order the same
// writes. It is all or nothing: what can be checked (values, files the
// host lacks) is refused before anything is written, and when the kernel
// refuses a write the earlier ones are written back.
func Update(m Manager, cur, r *config.Resources) (*config.Resources, error) {
	r = withMemoryPair(cur, r)
	merged, err := mergeResources(cur, r)
	if err != nil {
		return nil, err
	}
	if merged.SwapBelowMemory() {
		return nil, fmt.Errorf("memory+swap limit %d is below the memory limit %d", *merged.MemorySwap, *merged.MemoryLimit)
	}
	if err := checkBeforeUpdate(m, merged, r); err != nil {
		return nil, err
	}
	if err := CheckValues(m, r); err != nil {
		return nil, err
	}
	ws, err := planOrdered(m, r)
	if err == nil {
		ws, err = present(ws)
	}
	if err != nil {
		return nil, err
	}
	if err := applyUndoable(ws); err != nil {
		return nil, err
	}
	return merged, nil
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
func checkBeforeUpdate(cg Manager, merged, r *config.Resources) error {
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

// SetOrdered applies r (Manager.Set) in an order the kernel accepts
// (planOrdered).
func SetOrdered(cg Manager, r *config.Resources) error {
	ws, err := planOrdered(cg, r)
	if err != nil {
		return err
	}
	return applyAll(ws)
}

// planOrdered lists the writes of r in an order the kernel accepts. On v1
// the kernel refuses a memory.limit above memory.memsw.limit at every
// step, so when both change the one that grows is written first: swap
// before memory when memory rises, memory before swap when it falls.
func planOrdered(cg Manager, r *config.Resources) ([]write, error) {
	if _, v2 := cgroupfs.V2Dir(cg.Paths()); v2 || r.MemoryLimit == nil || r.MemorySwap == nil {
		return cg.plan(r)
	}
	swap := &config.Resources{MemorySwap: r.MemorySwap}
	rest := *r
	rest.MemorySwap = nil
	first, second := &rest, swap
	if memoryRises(cg, *r.MemoryLimit) {
		first, second = swap, &rest
	}
	a, err := cg.plan(first)
	if err != nil {
		return nil, err
	}
	b, err := cg.plan(second)
	return append(a, b...), err
}

func memoryRises(cg Manager, limit int64) bool {
	if limit < 0 {
		return true
	}
	s, err := cg.Stats()
	return err != nil || uint64(limit) > s.Memory.Usage.Limit
}
