package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Scheduler is a process's CPU scheduling, as sched_setattr(2) takes it.
// Names are config.json's (spec has checked them); Attr gives the numbers.
type Scheduler struct {
	Policy   string   `json:"policy"`          // SCHED_OTHER, SCHED_FIFO, ...
	Flags    []string `json:"flags,omitempty"` // SCHED_FLAG_* names
	Nice     int32    `json:"nice,omitempty"`
	Priority int32    `json:"priority,omitempty"`
	// Runtime, Deadline and Period are SCHED_DEADLINE's, in nanoseconds.
	Runtime  uint64 `json:"runtime,omitempty"`
	Deadline uint64 `json:"deadline,omitempty"`
	Period   uint64 `json:"period,omitempty"`
}

// SchedPolicies numbers the scheduling policies (linux/sched.h). SCHED_ISO
// is reserved: the kernel refuses it, as it refuses it to runc.
var SchedPolicies = map[string]uint32{
	"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
	"SCHED_ISO": 4, "SCHED_IDLE": 5, "SCHED_DEADLINE": 6,
}

// SchedFlags are the sched_attr flag bits (linux/sched.h).
var SchedFlags = map[string]uint64{
	"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
	"SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
	"SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
	"SCHED_FLAG_UTIL_CLAMP_MAX": 0x40,
}

// Attr returns the policy number and the flag bits of s.
func (s *Scheduler) Attr() (policy uint32, flags uint64) {
	for _, f := range s.Flags {
		flags |= SchedFlags[f]
	}
	return SchedPolicies[s.Policy], flags
}

// IOPriority is a process's I/O scheduling class and level, as
// ioprio_set(2) takes them.
type IOPriority struct {
	Class    string `json:"class"` // IOPRIO_CLASS_RT, _BE or _IDLE
	Priority int    `json:"priority"`
}

// IOPrioClasses numbers the I/O priority classes (linux/ioprio.h).
var IOPrioClasses = map[string]int{"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}

// Value is the ioprio_set(2) argument: the class above the 13 bits of the
// level.
func (p *IOPriority) Value() int {
	return IOPrioClasses[p.Class]<<13 | p.Priority
}

// CPUAffinity is where an exec'd process runs: Initial from its start
// until it is in the container's cgroup, Final from then on. Each is a CPU
// list in the kernel's format ("0-3,7"), checked by spec; empty leaves
// that stage to the kernel. A container's init ignores it, as the runtime
// spec says.
type CPUAffinity struct {
	Initial string `json:"initial,omitempty"`
	Final   string `json:"final,omitempty"`
}

// ParseIDList returns the ids of a list in the kernel's format
// ("0-3,5,7-8"), as cpuset files and /sys/devices/system/cpu/online write
// CPUs and memory nodes.
func ParseIDList(s string) (map[int]bool, error) {
	ids := map[int]bool{}
	if s == "" {
		return ids, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("%q is not a list of numbers and ranges", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("%q is not a list of numbers and ranges", s)
			}
		}
		if b-a > 1<<16 {
			return nil, fmt.Errorf("range %q is too large", part)
		}
		for i := a; i <= b; i++ {
			ids[i] = true
		}
	}
	return ids, nil
}
