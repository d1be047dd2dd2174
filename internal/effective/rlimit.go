package effective

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Rlimit is one line of /proc/<pid>/limits; Soft and Hard are -1 when
// unlimited.
type Rlimit struct {
	Name string `json:"name"`
	Soft int64  `json:"soft"`
	Hard int64  `json:"hard"`
	Unit string `json:"unit,omitempty"`
}

// The columns of /proc/<pid>/limits, fixed by the kernel's format
// ("%-25s %-20s %-20s %-10s"): names contain spaces, so fields are cut by
// position.
const (
	rlimitSoftCol = 26
	rlimitHardCol = 47
	rlimitUnitCol = 68
)

// ReadRlimits returns the rlimits of pid under root.
func ReadRlimits(root string, pid int) ([]Rlimit, error) {
	f, err := procFile(root, pid, "limits")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading limits of process %d: %w", pid, err)
	}
	return ParseRlimits(string(data))
}

// ParseRlimits parses the content of a /proc/<pid>/limits file.
func ParseRlimits(s string) ([]Rlimit, error) {
	var out []Rlimit
	for i, line := range strings.Split(s, "\n") {
		if i == 0 || strings.TrimSpace(line) == "" {
			continue
		}
		if len(line) < rlimitUnitCol {
			line += strings.Repeat(" ", rlimitUnitCol-len(line))
		}
		r := Rlimit{
			Name: strings.TrimSpace(line[:rlimitSoftCol]),
			Unit: strings.TrimSpace(line[rlimitUnitCol:]),
		}
		var err error
		if r.Soft, err = rlimitValue(line[rlimitSoftCol:rlimitHardCol]); err != nil {
			return nil, fmt.Errorf("limits line %q: %w", line, err)
		}
		if r.Hard, err = rlimitValue(line[rlimitHardCol:rlimitUnitCol]); err != nil {
			return nil, fmt.Errorf("limits line %q: %w", line, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func rlimitValue(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "unlimited" {
		return -1, nil
	}
	return strconv.ParseInt(s, 10, 64)
}
