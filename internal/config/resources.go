package config

// WeightDevice is a block device's own I/O weight; nil leaves that weight
// alone.
type WeightDevice struct {
	Major      int64   `json:"major"`
	Minor      int64   `json:"minor"`
	Weight     *uint16 `json:"weight,omitempty"`
	LeafWeight *uint16 `json:"leafWeight,omitempty"`
}

// ThrottleDevice caps one block device at Rate bytes or operations per
// second.
type ThrottleDevice struct {
	Major int64  `json:"major"`
	Minor int64  `json:"minor"`
	Rate  uint64 `json:"rate"`
}

// HugepageLimit caps the container's use of pages of Pagesize, spelled as
// the cgroup files spell it ("2MB", "1GB").
type HugepageLimit struct {
	Pagesize string `json:"pagesize"`
	Limit    uint64 `json:"limit"`
}

// NetPriority is the priority of the container's traffic on interface Name.
type NetPriority struct {
	Name     string `json:"name"`
	Priority uint32 `json:"priority"`
}

// RdmaLimit caps the HCA handles and objects of one RDMA device; nil is
// unlimited.
type RdmaLimit struct {
	HcaHandles *uint32 `json:"hcaHandles,omitempty"`
	HcaObjects *uint32 `json:"hcaObjects,omitempty"`
}

// SwapBelowMemory reports whether r limits memory plus swap (MemorySwap, as
// runc and v1's memory.memsw count it) below memory alone (MemoryLimit),
// both set and positive (0 is unset, -1 unlimited). No kernel takes that:
// v1 refuses the memsw limit, and v2's memory.swap.max, their difference,
// would be negative. A config (spec) and an update (container) that ask
// for it are refused before anything is written.
func (r *Resources) SwapBelowMemory() bool {
	l, s := r.MemoryLimit, r.MemorySwap
	return l != nil && s != nil && *l > 0 && *s > 0 && *s < *l
}
