package effective

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// IOLimit is the effective throttle of one kind ("rbps", "wbps", "riops",
// "wiops", v2's names) on one device ("major:minor").
type IOLimit struct {
	Device string `json:"device"`
	Kind   string `json:"kind"`
	Limit[uint64]
}

// v1IOFiles maps v1's throttle files to v2's names of the same limit.
var v1IOFiles = []struct{ file, kind string }{
	{"blkio.throttle.read_bps_device", "rbps"}, {"blkio.throttle.write_bps_device", "wbps"},
	{"blkio.throttle.read_iops_device", "riops"}, {"blkio.throttle.write_iops_device", "wiops"},
}

// readIO collects every throttle set at any level; a device and kind
// limited at one level only has that level's value.
func readIO(l *Limits, dir string, v2 bool) error {
	byKey := map[string]*IOLimit{}
	for d := dir; ; d = filepath.Dir(d) {
		vals, err := ioLevel(d, v2)
		if err != nil {
			return err
		}
		for key, v := range vals {
			il := byKey[key]
			if il == nil {
				dev, kind, _ := strings.Cut(key, " ")
				il = &IOLimit{Device: dev, Kind: kind}
				byKey[key] = il
			}
			il.Levels = append(il.Levels, Level[uint64]{Cgroup: d, Value: v, Set: true})
			if !il.Set || v < il.Value {
				il.Value, il.Set, il.At = v, true, d
			}
		}
		if !isCgroup(filepath.Dir(d)) || filepath.Dir(d) == d {
			break
		}
	}
	for _, il := range byKey {
		l.IO = append(l.IO, *il)
	}
	slices.SortFunc(l.IO, func(a, b IOLimit) int {
		return strings.Compare(a.Device+" "+a.Kind, b.Device+" "+b.Kind)
	})
	return nil
}

// ioLevel reads one cgroup's throttles as "major:minor kind" -> value.
func ioLevel(dir string, v2 bool) (map[string]uint64, error) {
	out := map[string]uint64{}
	if v2 {
		s, err := readValue(dir, "io.max")
		if errors.Is(err, errNoFile) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(s, "\n") {
			fields := strings.Fields(line)
			for _, f := range fields[min(1, len(fields)):] {
				kind, val, _ := strings.Cut(f, "=")
				if val == "max" {
					continue
				}
				v, err := strconv.ParseUint(val, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("%s/io.max: %q: %w", dir, f, err)
				}
				out[fields[0]+" "+kind] = v
			}
		}
		return out, nil
	}
	for _, f := range v1IOFiles {
		s, err := readValue(dir, f.file)
		if errors.Is(err, errNoFile) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(s, "\n") {
			dev, val, ok := strings.Cut(strings.TrimSpace(line), " ")
			if !ok {
				continue
			}
			v, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s/%s: %q: %w", dir, f.file, line, err)
			}
			out[dev+" "+f.kind] = v
		}
	}
	return out, nil
}
