package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/lkc-containers/lkc/internal/effective"
)

// cmdLimits answers "what may I use?" for a process (by default lkc
// itself, which has its caller's cgroups, rlimits and CPUs): each limit of
// its cgroups, the tightest of the cgroup and its ancestors and where it is
// set, its rlimits and its CPUs. It reads /proc and cgroupfs as the
// process's namespace shows them, so inside a container it reports what
// the container can see.
func cmdLimits(g *globals, args []string) error {
	fs := newFlags("limits")
	asJSON := fs.Bool("json", false, "print JSON")
	rest, err := parse(fs, args, nargs{min: 0, max: 1}, "lkc limits [--json] [PID]")
	if err != nil {
		return err
	}
	pid := os.Getpid()
	if len(rest) == 1 {
		if pid, err = strconv.Atoi(rest[0]); err != nil || pid <= 0 {
			return fmt.Errorf("PID %q: want a positive number", rest[0])
		}
	}
	p, err := effective.ForProcess("/", pid)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	return printLimits(os.Stdout, p)
}

// printLimits writes p as three tables: cgroup limits, CPUs, rlimits.
func printLimits(out io.Writer, p *effective.Process) error {
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintf(w, "process %d\n\nLIMIT\tEFFECTIVE\tSET BY\n", p.Pid)
	l := p.Limits
	bytesRow(w, "memory", l.Memory)
	bytesRow(w, "memory+swap", l.MemSwap)
	bytesRow(w, "swap", l.Swap)
	if l.CPUs != nil {
		fmt.Fprintf(w, "cpu quota\t%s\t%s\n", cpusValue(l.CPUs), l.CPUs.At)
	}
	if l.Shares != nil {
		fmt.Fprintf(w, "cpu shares\t%d\t%s (relative to its siblings)\n", l.Shares.Value, l.Shares.At)
	}
	if l.Weight != nil {
		fmt.Fprintf(w, "cpu weight\t%d\t%s (relative to its siblings)\n", l.Weight.Value, l.Weight.At)
	}
	if l.Cpuset != nil {
		fmt.Fprintf(w, "cpuset\t%s\t%s\n", l.Cpuset.Set, l.Cpuset.At)
	}
	if l.Pids != nil {
		v := "unlimited"
		if l.Pids.Set {
			v = strconv.FormatUint(l.Pids.Value, 10)
		}
		fmt.Fprintf(w, "pids\t%s\t%s\n", v, l.Pids.At)
	}
	for _, io := range l.IO {
		unit := "/s"
		if strings.HasSuffix(io.Kind, "bps") {
			unit = "B/s"
		}
		fmt.Fprintf(w, "io %s %s\t%d %s\t%s\n", io.Device, io.Kind, io.Value, unit, io.At)
	}
	fmt.Fprintf(w, "\nCPUS\t%s\t(%s CPUs of time)\n", p.Affinity, strconv.FormatFloat(p.CPUs, 'f', -1, 64))
	fmt.Fprintf(w, "\nRLIMIT\tSOFT\tHARD\tUNIT\n")
	for _, r := range p.Rlimits {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.Name, rlimitValue(r.Soft), rlimitValue(r.Hard), r.Unit)
	}
	return w.Flush()
}

func bytesRow(w io.Writer, name string, l *effective.Limit[uint64]) {
	if l == nil {
		return
	}
	v := "unlimited"
	if l.Set {
		v = humanBytes(l.Value)
	}
	fmt.Fprintf(w, "%s\t%s\t%s\n", name, v, l.At)
}

func cpusValue(l *effective.Limit[float64]) string {
	if !l.Set {
		return "unlimited"
	}
	return strconv.FormatFloat(l.Value, 'f', -1, 64) + " CPUs"
}

func rlimitValue(v int64) string {
	if v < 0 {
		return "unlimited"
	}
	return strconv.FormatInt(v, 10)
}

// humanBytes writes a byte count in binary units, exact when it is a whole
// number of them (64M -> "64 MiB"), with the exact count otherwise.
func humanBytes(v uint64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if v >= 1<<u.shift && v%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", v>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%d B", v)
}
