package effective

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Process is what a process may use: its cgroups' effective limits, its
// rlimits and the CPUs it may run on.
type Process struct {
	Pid     int     `json:"pid"`
	Cgroups Cgroups `json:"cgroups"`
	Limits  *Limits `json:"limits"`
	// Rlimits are /proc/<pid>/limits, in the kernel's order.
	Rlimits []Rlimit `json:"rlimits"`
	// Affinity is the CPUs the scheduler lets it use (sched_getaffinity,
	// as /proc/<pid>/status's Cpus_allowed_list shows it), which the
	// kernel keeps within its cpuset.
	Affinity CPUSet `json:"affinity"`
	// CPUs is how much CPU it may use, in CPUs: as many as Affinity
	// holds, or fewer when its cgroups' quota is tighter.
	CPUs float64 `json:"cpus"`
}

// ErrNoProcess says a process does not exist; it is an fs.ErrNotExist.
var ErrNoProcess error = noProcess{}

type noProcess struct{}

func (noProcess) Error() string        { return "no such process" }
func (noProcess) Is(target error) bool { return target == fs.ErrNotExist }

// ForProcess reads everything about pid under root ("/" on the machine).
// A process that does not exist is an error wrapping fs.ErrNotExist.
func ForProcess(root string, pid int) (*Process, error) {
	p := &Process{Pid: pid}
	var err error
	if p.Cgroups, err = ForPid(root, pid); err != nil {
		return nil, err
	}
	if p.Limits, err = Read(p.Cgroups); err != nil {
		return nil, err
	}
	if p.Rlimits, err = ReadRlimits(root, pid); err != nil {
		return nil, err
	}
	if p.Affinity, err = ReadAffinity(root, pid); err != nil {
		return nil, err
	}
	p.CPUs = float64(len(p.Affinity))
	if q := p.Limits.CPUs; q != nil && q.Set {
		p.CPUs = min(p.CPUs, q.Value)
	}
	return p, nil
}

// procFile opens /proc/<pid>/<name> under root, naming the process in the
// error when it does not exist.
func procFile(root string, pid int, name string) (*os.File, error) {
	f, err := os.Open(filepath.Join(root, "proc", strconv.Itoa(pid), name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
	}
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	return f, nil
}

// ForPid finds the cgroup directories of pid as this process sees them:
// /proc/<pid>/cgroup gives each hierarchy's path (relative to the reader's
// cgroup namespace), and /proc/self/mountinfo where that hierarchy is
// mounted and which part of it the mount shows. A hierarchy not mounted
// here is left out.
func ForPid(root string, pid int) (Cgroups, error) {
	f, err := procFile(root, pid, "cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	mounts, err := cgroupMounts(root)
	if err != nil {
		return nil, err
	}
	cg := Cgroups{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || strings.HasPrefix(parts[1], "name=") {
			continue
		}
		for _, m := range mounts {
			if m.v2 != (parts[1] == "") || m.controllers != parts[1] {
				continue
			}
			rel, err := filepath.Rel(m.root, parts[2])
			if err != nil || strings.HasPrefix(rel, "..") {
				continue
			}
			cg[parts[1]] = filepath.Join(root, m.point, rel)
			break
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading cgroups of process %d: %w", pid, err)
	}
	return cg, nil
}

// cgroupMount is one cgroup mount: its hierarchy (v1: the controllers in
// /proc/<pid>/cgroup's spelling; v2: ""), the part of it shown, and where.
type cgroupMount struct {
	v2                       bool
	controllers, root, point string
}

func cgroupMounts(root string) ([]cgroupMount, error) {
	data, err := os.ReadFile(filepath.Join(root, "proc/self/mountinfo"))
	if err != nil {
		return nil, fmt.Errorf("reading mounts: %w", err)
	}
	var out []cgroupMount
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(fields) < sep+4 {
			continue
		}
		m := cgroupMount{root: unescape(fields[3]), point: unescape(fields[4])}
		switch fields[sep+1] {
		case "cgroup2":
			m.v2 = true
		case "cgroup":
			m.controllers = v1Controllers(fields[sep+3])
		default:
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// v1Controllers picks the controllers out of a v1 mount's super options
// in the kernel's order, which is /proc/<pid>/cgroup's too.
func v1Controllers(opts string) string {
	var ctrls []string
	for _, o := range strings.Split(opts, ",") {
		switch {
		case o == "rw" || o == "ro" || strings.Contains(o, "="):
		case o == "noprefix" || o == "clone_children" || o == "xattr" || o == "cpuset_v2_mode":
		case strings.HasPrefix(o, "favordynmods") || strings.HasPrefix(o, "nsdelegate"):
		default:
			ctrls = append(ctrls, o)
		}
	}
	return strings.Join(ctrls, ",")
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ReadAffinity returns the CPUs pid may run on, from Cpus_allowed_list.
func ReadAffinity(root string, pid int) (CPUSet, error) {
	f, err := procFile(root, pid, "status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Cpus_allowed_list:"); ok {
			return ParseCPUSet(v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading status of process %d: %w", pid, err)
	}
	return nil, fmt.Errorf("process %d: no Cpus_allowed_list in its status", pid)
}
