package cgroups

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// setting is one write of a limit: value to file, in the directory of
// controller ctrl on v1. key is the linux.resources field it comes from, so
// errors name it.
type setting struct {
	key, ctrl, file, value string
	// optional settings are skipped when the kernel lacks the file (a
	// deprecated or newer knob whose value is a no-op there).
	optional bool
	// restore gives, from the file's content before the write, the value
	// that undoes it (false: nothing to write back); nil means the content
	// is one value (restoreWhole).
	restore func(old, value string) (string, bool)
	// final settings cannot be undone (a v1 device rule adds to a list
	// read elsewhere): an update writes them after all the others.
	final bool
}

func (s setting) write(dir string) error {
	err := writeFile(dir, s.file, s.value)
	if errors.Is(err, os.ErrNotExist) {
		if s.optional {
			return nil
		}
		return s.missing()
	}
	if err != nil {
		return fmt.Errorf("linux.resources.%s: %w", s.key, err)
	}
	return nil
}

// missing is the error for a file the kernel lacks: for a unified key,
// most often a controller not enabled for the cgroup.
func (s setting) missing() error {
	if strings.HasPrefix(s.key, "unified[") {
		ctrl, _, _ := strings.Cut(s.file, ".")
		return fmt.Errorf("linux.resources.%s: %w (no such file; is the %s controller enabled?)", s.key, ErrNotSupported, ctrl)
	}
	return fmt.Errorf("linux.resources.%s: %w (the kernel has no %s)", s.key, ErrNotSupported, s.file)
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
