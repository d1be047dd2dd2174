// Package stats reads per-container usage counters in the one shape that
// `lkc stats`, `lkc top` and the daemon's /metrics show. It only reads:
// the container records under a root, their cgroups (through
// internal/cgroups, so v1 and v2 look alike) and each init's
// /proc/<pid>/net/dev, which the kernel renders for the network namespace
// of that process, so no setns is needed. It needs no daemon.
package stats

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/container"
	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/state"
)

// Sample is one container's counters at one moment. Counters that the
// host does not keep (a controller not mounted, a stopped container) are
// zero. Limits are zero when unlimited.
type Sample struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Pid    int    `json:"pid,omitempty"`
	// Policy is the container's org.lkc.oom-policy annotation, "kernel"
	// without one.
	Policy string    `json:"policy"`
	Time   time.Time `json:"time"`
	// CPUNanos is CPU time used since the container started.
	CPUNanos uint64 `json:"cpuNanos"`
	// CPUPercent is CPU used between the previous sample of the same
	// Reader and this one, 100 per CPU kept busy (as docker stats); 0 on a
	// first sample.
	CPUPercent float64 `json:"cpuPercent"`
	MemoryUsed uint64  `json:"memoryUsed"`
	// MemoryWorkingSet is MemoryUsed less the inactive file cache, what
	// the kernel cannot reclaim cheaply (cAdvisor's working set).
	MemoryWorkingSet uint64 `json:"memoryWorkingSet"`
	MemoryCache      uint64 `json:"memoryCache"`
	MemoryLimit      uint64 `json:"memoryLimit,omitempty"`
	Pids             uint64 `json:"pids"`
	PidsLimit        uint64 `json:"pidsLimit,omitempty"`
	BlockRead        uint64 `json:"blockReadBytes"`
	BlockWrite       uint64 `json:"blockWriteBytes"`
	NetRx            uint64 `json:"netRxBytes"`
	NetTx            uint64 `json:"netTxBytes"`
	OOMKills         uint64 `json:"oomKills"`
}

// ErrNotExist is returned for an id given to Read that names no container.
var ErrNotExist = container.ErrNotExist

// Reader samples the containers under one root. It remembers each
// container's previous sample, so CPUPercent compares two reads of the
// same Reader. Not safe for concurrent use.
type Reader struct {
	root string
	proc string
	prev map[string]Sample
	// Warn hears, once per container, why a read of every container left
	// that one out (nil drops it).
	Warn   func(error)
	warned map[string]bool
}

// NewReader returns a Reader of the containers under root.
func NewReader(root string) *Reader {
	return &Reader{root: root, proc: "/proc", prev: map[string]Sample{}, warned: map[string]bool{}}
}

// Read samples the containers named by ids, in that order, or every
// container under the root (sorted by id) when ids is empty. An id that
// names no container fails the read with an error naming it. Reading
// every container, one deleted between the listing and its read is left
// out, and so is one that cannot be read (a corrupt record, a cgroup gone
// under it), told to Warn, as `lkc list` does: one bad container must not
// blind stats, top and /metrics to all the others.
func (r *Reader) Read(ids ...string) ([]Sample, error) {
	all := len(ids) == 0
	if all {
		var err error
		if ids, err = state.List(r.root); err != nil {
			return nil, err
		}
		sort.Strings(ids)
	}
	out := make([]Sample, 0, len(ids))
	seen := make(map[string]Sample, len(ids))
	for _, id := range ids {
		s, err := r.one(id)
		if all && err != nil {
			if !errors.Is(err, container.ErrNotExist) && !r.warned[id] {
				r.warned[id] = true
				if r.Warn != nil {
					r.Warn(err)
				}
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
		seen[id] = s
	}
	if all {
		r.prev = seen // forget deleted containers
	} else {
		for id, s := range seen {
			r.prev[id] = s
		}
	}
	return out, nil
}

func (r *Reader) one(id string) (Sample, error) {
	h, err := container.Peek(r.root, id)
	if err != nil {
		if errors.Is(err, state.ErrBadID) || errors.Is(err, state.ErrNotExist) {
			return Sample{}, fmt.Errorf("container %s: %w", id, container.ErrNotExist)
		}
		return Sample{}, fmt.Errorf("container %s: %w", id, err)
	}
	s := Sample{ID: id, Status: h.Status(), Policy: policy(h), Time: time.Now()}
	if s.Status == container.Stopped {
		return s, nil
	}
	s.Pid = h.Pid()
	cg, err := h.Cgroup().Usage()
	if err != nil {
		return Sample{}, fmt.Errorf("container %s: %w", id, err)
	}
	fill(&s, cg)
	if s.NetRx, s.NetTx, err = netDev(r.proc, s.Pid); err != nil {
		// The init exited since its status was read: the container shows
		// without network counters rather than failing every row.
		s.NetRx, s.NetTx = 0, 0
	}
	if p, ok := r.prev[id]; ok && p.Pid == s.Pid && s.CPUNanos >= p.CPUNanos {
		if wall := s.Time.Sub(p.Time); wall > 0 {
			s.CPUPercent = float64(s.CPUNanos-p.CPUNanos) / float64(wall.Nanoseconds()) * 100
		}
	}
	return s, nil
}

func policy(h *container.Handle) string {
	if c := h.Config(); c != nil {
		if p := c.Annotations[hostconf.AnnotationOOMPolicy]; p != "" {
			return p
		}
	}
	return "kernel"
}

// fill converts the cgroups' counters. A limit the kernel reports as
// unlimited (v2 "max", v1's page-rounded huge number) becomes 0.
func fill(s *Sample, cg *cgroups.Stats) {
	s.CPUNanos = cg.CPU.Usage.Total
	m := &cg.Memory
	s.MemoryUsed, s.MemoryCache, s.OOMKills = m.Usage.Usage, m.Cache, m.OOMKill
	if m.Usage.Limit < math.MaxInt64/2 {
		s.MemoryLimit = m.Usage.Limit
	}
	// v1 keeps a cgroup's own counters and total_* ones that count its
	// sub-cgroups (exec --cgroup) too, as usage_in_bytes does; v2's are
	// all hierarchical.
	inactive := m.Raw["total_inactive_file"]
	if _, v1 := m.Raw["total_inactive_file"]; v1 {
		s.MemoryCache = m.Raw["total_cache"]
	} else {
		inactive = m.Raw["inactive_file"]
	}
	if inactive < s.MemoryUsed {
		s.MemoryWorkingSet = s.MemoryUsed - inactive
	}
	s.Pids, s.PidsLimit = cg.Pids.Current, cg.Pids.Limit
	for _, e := range cg.Blkio.IoServiceBytesRecursive {
		switch e.Op {
		case "Read":
			s.BlockRead += e.Value
		case "Write":
			s.BlockWrite += e.Value
		}
	}
}
