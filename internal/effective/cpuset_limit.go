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

func readCpuset(l *Limits, dir string, v2 bool) error {
	effFile := "cpuset.effective_cpus"
	if v2 {
		effFile = "cpuset.cpus.effective"
	}
	c := &CPUs{}
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
