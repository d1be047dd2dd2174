package cgroups

import (
	"errors"
	"fmt"
	"os"
	"strconv"
)

// setting is one write of a limit: value to file, in the directory of
// controller ctrl on v1. key is the linux.resources field it comes from, so
// errors name it.
type setting struct {
	key, ctrl, file, value string
	// optional settings are skipped when the kernel lacks the file (a
	// deprecated or newer knob whose value is a no-op there).
	optional bool
}

func (s setting) write(dir string) error {
	err := writeFile(dir, s.file, s.value)
	if errors.Is(err, os.ErrNotExist) {
		if s.optional {
			return nil
		}
		return fmt.Errorf("linux.resources.%s: %w (the kernel has no %s)", s.key, ErrNotSupported, s.file)
	}
	if err != nil {
		return fmt.Errorf("linux.resources.%s: %w", s.key, err)
	}
	return nil
}

func itoa(v int64) string  { return strconv.FormatInt(v, 10) }
func utoa(v uint64) string { return strconv.FormatUint(v, 10) }

func boolValue(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// devNum spells a block device as cgroup files do.
func devNum(major, minor int64) string { return itoa(major) + ":" + itoa(minor) }
