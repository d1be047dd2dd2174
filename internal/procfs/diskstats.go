package procfs

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// ioCount is a container's I/O on one device.
type ioCount struct {
	reads, writes, discards          uint64
	readBytes, writeBytes, discBytes uint64
}

// ioCounts reads c's I/O per device ("major:minor"): v1 blkio's
// throttle.io_serviced_recursive and io_service_bytes_recursive (counted
// by the throttle layer, which every I/O scheduler passes), v2 io.stat.
func (h *Host) ioCounts(c *Container) (map[string]*ioCount, error) {
	out := map[string]*ioCount{}
	get := func(dev string) *ioCount {
		if out[dev] == nil {
			out[dev] = &ioCount{}
		}
		return out[dev]
	}
	dir, v2, err := h.cgroupDir(c, "io")
	if err != nil {
		if dir, _, err = h.cgroupDir(c, "blkio"); err != nil {
			return nil, err
		}
	}
	if v2 {
		s, err := readCgroupFile(dir, "io.stat")
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(s, "\n") {
			f := strings.Fields(line)
			for _, kv := range f[min(1, len(f)):] {
				k, v, _ := strings.Cut(kv, "=")
				n, _ := strconv.ParseUint(v, 10, 64)
				ioc := get(f[0])
				switch k {
				case "rios":
					ioc.reads = n
				case "wios":
					ioc.writes = n
				case "dios":
					ioc.discards = n
				case "rbytes":
					ioc.readBytes = n
				case "wbytes":
					ioc.writeBytes = n
				case "dbytes":
					ioc.discBytes = n
				}
			}
		}
		return out, nil
	}
	for _, file := range []struct {
		name  string
		bytes bool
	}{{"blkio.throttle.io_serviced_recursive", false}, {"blkio.throttle.io_service_bytes_recursive", true}} {
		s, err := readCgroupFile(dir, file.name)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(s, "\n") {
			f := strings.Fields(line)
			if len(f) != 3 {
				continue
			}
			n, err := strconv.ParseUint(f[2], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s/%s: %q: %w", dir, file.name, line, err)
			}
			ioc := get(f[0])
			fields := map[string]*uint64{"Read": &ioc.reads, "Write": &ioc.writes, "Discard": &ioc.discards}
			if file.bytes {
				fields = map[string]*uint64{"Read": &ioc.readBytes, "Write": &ioc.writeBytes, "Discard": &ioc.discBytes}
			}
			if p := fields[f[1]]; p != nil {
				*p = n
			}
		}
	}
	return out, nil
}

// renderDiskstats writes the host's devices, in the host's order, that the
// container did I/O on, with its own counts of requests and sectors; times,
// merges and in-flight counts are 0 (cgroups keep none per device).
func renderDiskstats(h *Host, c *Container) ([]byte, error) {
	counts, err := h.ioCounts(c)
	if err != nil {
		return nil, err
	}
	host, err := h.read("proc/diskstats")
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(host))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 14 {
			continue
		}
		ioc := counts[f[0]+":"+f[1]]
		if ioc == nil || *ioc == (ioCount{}) {
			continue
		}
		vals := make([]uint64, len(f)-3)
		vals[0], vals[2], vals[4], vals[6] = ioc.reads, ioc.readBytes/512, ioc.writes, ioc.writeBytes/512
		if len(vals) >= 14 {
			vals[11], vals[13] = ioc.discards, ioc.discBytes/512
		}
		fmt.Fprintf(&b, "%4s %7s %s", f[0], f[1], f[2])
		for _, v := range vals {
			fmt.Fprintf(&b, " %d", v)
		}
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}
