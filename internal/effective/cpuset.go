package effective

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// CPUSet is a sorted list of CPU numbers without duplicates, the parsed
// form of the kernel's list format ("0-3,8").
type CPUSet []int

// ParseCPUSet reads the kernel's list format; an empty string (a v2 cpuset
// that inherits) is the empty set.
func ParseCPUSet(s string) (CPUSet, error) {
	var set CPUSet
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(lo)
		if err != nil || first < 0 {
			return nil, fmt.Errorf("cpu list %q: bad cpu %q", s, lo)
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil || last < first {
				return nil, fmt.Errorf("cpu list %q: bad range %q", s, part)
			}
		}
		for c := first; c <= last; c++ {
			set = append(set, c)
		}
	}
	slices.Sort(set)
	return slices.Compact(set), nil
}

// String writes the kernel's list format, ranges folded.
func (s CPUSet) String() string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(s[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(s[j]))
		}
		i = j + 1
	}
	return b.String()
}

// Intersect returns the CPUs in both s and o.
func (s CPUSet) Intersect(o CPUSet) CPUSet {
	out := CPUSet{}
	for _, c := range s {
		if _, ok := slices.BinarySearch(o, c); ok {
			out = append(out, c)
		}
	}
	return out
}

// MarshalText lets JSON carry the list format, as the kernel's files do.
func (s CPUSet) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads the list format back.
func (s *CPUSet) UnmarshalText(text []byte) error {
	set, err := ParseCPUSet(string(text))
	*s = set
	return err
}
