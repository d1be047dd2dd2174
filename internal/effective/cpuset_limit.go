package effective

import (
	"errors"
	"os"
	"path/filepath"
)

// CPUs is the set of CPUs a cgroup may run on: the kernel's effective set
// of the cgroup (its own set within every ancestor's, and within the CPUs
// online), with the level whose own set is the smallest.
type CPUs struct {
	Set    CPUSet        `json:"cpus"`
	At     string        `json:"at,omitempty"`
	Levels []CPUSetLevel `json:"levels"`
}

// CPUSetLevel is one cgroup's own cpuset.cpus; an empty Set on v2 means it
// inherits its parent's.
type CPUSetLevel struct {
	Cgroup string `json:"cgroup"`
	Set    CPUSet `json:"cpus"`
}

// CpusetCPUs returns the CPUs cg's cpuset lets it use, as the kernel
// computed them (v1 cpuset.effective_cpus, v2 cpuset.cpus.effective); ok
// is false when there is no cpuset controller or no such file.
func CpusetCPUs(cg Cgroups) (set CPUSet, ok bool, err error) {
	dir, v2, ok, err := cg.Dir("cpuset")
	if err != nil || !ok {
		return nil, false, err
	}
	s, err := readValue(dir, effectiveCPUsFile(v2))
	if errors.Is(err, errNoFile) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	set, err = ParseCPUSet(s)
	return set, err == nil, err
}

func effectiveCPUsFile(v2 bool) string {
	if v2 {
		return "cpuset.cpus.effective"
	}
	return "cpuset.effective_cpus"
}

func readCpuset(l *Limits, dir string, v2 bool) error {
	effFile := effectiveCPUsFile(v2)
	c := &CPUs{Levels: []CPUSetLevel{}}
	var within, atSet CPUSet
	for d := dir; ; d = filepath.Dir(d) {
		s, err := readValue(d, "cpuset.cpus")
		if err == nil {
			set, err := ParseCPUSet(s)
			if err != nil {
				return err
			}
			c.Levels = append(c.Levels, CPUSetLevel{Cgroup: d, Set: set})
			if len(set) > 0 && (c.At == "" || len(set) < len(atSet)) {
				c.At, atSet = d, set
			}
			if len(set) > 0 {
				within = intersectOrFirst(within, set)
			}
		} else if !errors.Is(err, errNoFile) {
			return err
		}
		if !isCgroup(filepath.Dir(d)) || filepath.Dir(d) == d {
			break
		}
	}
	if len(c.Levels) == 0 && !v2 {
		return nil
	}
	c.Set = within
	if s, err := readValue(dir, effFile); err == nil {
		if c.Set, err = ParseCPUSet(s); err != nil {
			return err
		}
	} else if !errors.Is(err, errNoFile) && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	l.Cpuset = c
	return nil
}

func intersectOrFirst(acc, set CPUSet) CPUSet {
	if acc == nil {
		return set
	}
	return acc.Intersect(set)
}
