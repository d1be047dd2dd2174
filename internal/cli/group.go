package cli

import (
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/groups"
	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/oompolicy"
)

// groupUsage lists the subcommands of `lkc group`.
const groupUsage = "lkc group create|update NAME [limits] [--oom-policy P] [--oom-fallback F] [--oom-deadline D] | exec NAME -- CMD... | move NAME PID... | list [--json] | stats NAME [--json] | events [--follow] NAME | delete [--force] NAME"

// groupLimitFlags are the limits create and update take; values are read
// as `lkc update` (runc, docker) reads them.
var groupLimitFlags = []string{"memory", "memory-swap", "cpus", "cpu-shares", "cpuset-cpus", "io-weight", "pids-limit"}

// cmdGroup runs `lkc group SUBCOMMAND`: resource groups of host processes
// (internal/groups, docs/groups.md). The CLI does the work itself; the
// daemon only makes the groups' cgroups again after a reboot.
func cmdGroup(g *globals, args []string) error {
	if err := subcommandHelp(args, groupUsage); err != nil {
		return err
	}
	if len(args) == 0 {
		return fmt.Errorf("missing subcommand (usage: %s)", groupUsage)
	}
	conf, err := hostconf.Load()
	if err != nil {
		return err
	}
	s := groups.FromConf(conf)
	sub, args := args[0], args[1:]
	switch sub {
	case "create", "update":
		return groupLimits(conf, s, sub, args)
	case "exec":
		return groupExec(s, args)
	case "move":
		return groupMove(s, args)
	case "list":
		return groupList(s, args, g.warn)
	case "stats":
		return groupStats(s, args)
	case "events":
		return groupEvents(s, args)
	case "delete":
		return groupDelete(s, args)
	}
	return fmt.Errorf("unknown subcommand %q (usage: %s)", sub, groupUsage)
}

// groupLimits runs create and update. A group given an OOM policy other
// than kernel needs the daemon, which it starts where allowed, as create
// of such a container does, before anything is made or changed: without
// one, the command fails leaving the group as it was. The daemon arms the
// group from its definition, which it reads again every second.
func groupLimits(conf *hostconf.Conf, s *groups.Store, sub string, args []string) error {
	fs := newFlags("group " + sub)
	for _, name := range groupLimitFlags {
		fs.String(name, "", name)
	}
	policy := fs.String("oom-policy", "", "OOM policy (docs/oom.md)")
	fallback := fs.String("oom-fallback", "", "what acts when the OOM policy fails or overruns (\"\": oom.fallback)")
	deadline := fs.String("oom-deadline", "", "how long the OOM policy may take (\"\": oom.deadline)")
	usage := "lkc group " + sub + " NAME [--memory N] [--memory-swap N] [--cpus N] [--cpu-shares N] [--cpuset-cpus LIST] [--io-weight N] [--pids-limit N] [--oom-policy P] [--oom-fallback F] [--oom-deadline D]"
	rest, err := parse(fs, args, exactly(1), usage)
	if err != nil {
		return err
	}
	if err := groups.CheckName(rest[0]); err != nil {
		return err
	}
	r := &config.Resources{}
	oom := map[string]*string{} // the OOM flags given
	fs.Visit(func(f *flag.Flag) {
		switch v := f.Value.String(); {
		case err != nil:
		case strings.HasPrefix(f.Name, "oom-"):
			oom[f.Name] = &v
			err = checkGroupOOM(f.Name, v)
		default:
			err = setGroupFlag(r, f.Name, v)
		}
	})
	if err != nil {
		return err
	}
	if *policy != "" && *policy != string(oompolicy.Kernel) {
		cl, err := daemonapi.Ensure(conf)
		if err != nil {
			return fmt.Errorf("group %s: its OOM policy needs the lkc daemon: %w", rest[0], err)
		}
		cl.Close()
	}
	if sub == "update" {
		err = s.Update(rest[0], r)
		if err == nil && len(oom) > 0 {
			err = s.SetOOM(rest[0], oom["oom-policy"], oom["oom-fallback"], oom["oom-deadline"])
		}
	} else {
		err = s.Create(&groups.Group{Name: rest[0], Resources: *r, OOMPolicy: *policy, OOMFallback: *fallback, OOMDeadline: *deadline})
	}
	return err
}

// checkGroupOOM checks an OOM flag's value before anything is made or
// changed; an empty fallback or deadline stands for the host default.
func checkGroupOOM(name, v string) error {
	var err error
	switch {
	case name == "oom-policy":
		err = oompolicy.CheckGroupPolicy(v)
	case v == "":
	case name == "oom-fallback":
		err = oompolicy.CheckFallback(v)
	case name == "oom-deadline":
		_, err = oompolicy.ParseDeadline(v)
	}
	if err != nil {
		return fmt.Errorf("--%s %w", name, err)
	}
	return nil
}

// setGroupFlag stores one limit flag in r: the two docker has and runc
// update has not (--cpus, --io-weight, docker's --blkio-weight) here, the
// rest through update's own parser.
func setGroupFlag(r *config.Resources, name, v string) error {
	switch name {
	case "cpus":
		quota, ok := cpusQuota(v, runtime.NumCPU())
		if !ok {
			return fmt.Errorf("--cpus %q: use a number of CPUs from 0.01 to %d", v, runtime.NumCPU())
		}
		period := uint64(cpusPeriod)
		r.CPUQuota, r.CPUPeriod = &quota, &period
		return nil
	case "io-weight":
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil || n < 10 || n > 1000 {
			return fmt.Errorf("--io-weight %q: use a weight from 10 to 1000", v)
		}
		w := uint16(n)
		r.BlkioWeight = &w
		return nil
	case "cpu-shares":
		if err := setFlag(r, name, v); err != nil {
			return err
		}
		if *r.CPUShares < 2 || *r.CPUShares > 262144 {
			return fmt.Errorf("--cpu-shares %q: use a value from 2 to 262144", v)
		}
		return nil
	case "pids-limit":
		if err := setFlag(r, name, v); err != nil {
			return err
		}
		if *r.PidsLimit == 0 || *r.PidsLimit < -1 {
			return fmt.Errorf("--pids-limit %q: use a positive number, or -1 for no limit", v)
		}
		return nil
	case "memory", "memory-swap":
		if err := setFlag(r, name, v); err != nil {
			return err
		}
		n := r.MemoryLimit
		if name == "memory-swap" {
			n = r.MemorySwap
		}
		if *n == 0 || *n < -1 {
			return fmt.Errorf("--%s %q: use a positive size, or -1 for no limit", name, v)
		}
		// The kernel counts a limit in whole pages, rounded down: below
		// one it is 0, and every process in the group is OOM-killed at
		// its first allocation (a unit left out: 512 for 512m).
		if page := int64(os.Getpagesize()); *n > 0 && *n < page {
			return fmt.Errorf("--%s %q: below one page (%d bytes), which the kernel would make a limit of 0", name, v, page)
		}
		return nil
	}
	return setFlag(r, name, v)
}

// cpusPeriod is the CFS period --cpus sets, in µs (docker's).
const cpusPeriod = 100000

// cpusQuota is the CFS quota of --cpus v, in µs per cpusPeriod, as docker
// computes it: the decimal number read exactly (a float64 holds 0.29 as
// 0.28999..., which truncated to 28999), its quota rounded down. ok is
// false outside 0.01 to max CPUs.
func cpusQuota(v string, max int) (quota int64, ok bool) {
	n, ok := new(big.Rat).SetString(v)
	if !ok || n.Cmp(big.NewRat(1, 100)) < 0 || n.Cmp(big.NewRat(int64(max), 1)) > 0 {
		return 0, false
	}
	q := new(big.Rat).Mul(n, big.NewRat(cpusPeriod, 1))
	return new(big.Int).Quo(q.Num(), q.Denom()).Int64(), true
}

// groupExec runs a command in a group, as `systemd-run --scope` does: lkc
// moves itself (every thread) into the group's cgroups and execs the
// command, so the command's exit status is the caller's.
func groupExec(s *groups.Store, args []string) error {
	usage := "(usage: lkc group exec NAME -- CMD [ARGS...])"
	if len(args) > 1 && args[1] == "--" {
		args = append(args[:1:1], args[2:]...)
	}
	if len(args) < 2 {
		return fmt.Errorf("missing command %s", usage)
	}
	if err := groups.CheckName(args[0]); err != nil {
		return err
	}
	path, err := exec.LookPath(args[1])
	if err != nil {
		return fmt.Errorf("command %q: %w", args[1], lookPathCause(err))
	}
	if err := s.Join(args[0]); err != nil {
		return err
	}
	return fmt.Errorf("exec %s: %w", path, unix.Exec(path, args[1:], os.Environ()))
}

// lookPathCause is why exec.LookPath failed, without the name and path
// it repeats ("exec: \"x\": stat x: no such file or directory").
func lookPathCause(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		err = ee.Err
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return err
}

func groupMove(s *groups.Store, args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("missing argument (usage: lkc group move NAME PID...)")
	}
	if err := groups.CheckName(args[0]); err != nil {
		return err
	}
	pids := make([]int, 0, len(args)-1)
	for _, a := range args[1:] {
		pid, err := strconv.Atoi(a)
		if err != nil || pid <= 0 {
			return fmt.Errorf("PID %q: want a positive number", a)
		}
		pids = append(pids, pid)
	}
	return s.Move(args[0], pids)
}

func groupDelete(s *groups.Store, args []string) error {
	fs := newFlags("group delete")
	force := fs.Bool("force", false, "move the group's processes to its parent first")
	rest, err := parse(fs, args, exactly(1), "lkc group delete [--force] NAME")
	if err != nil {
		return err
	}
	return s.Delete(rest[0], *force)
}

// groupEntry is one line of `group list --json`.
type groupEntry struct {
	*groups.Group
	Procs int `json:"procs"`
}

func groupList(s *groups.Store, args []string, warn func(error)) error {
	fs := newFlags("group list")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args, exactly(0), "lkc group list [--json]"); err != nil {
		return err
	}
	all, err := s.List(warn)
	if err != nil {
		return err
	}
	entries := make([]groupEntry, 0, len(all))
	for _, g := range all {
		n := 0
		if m, err := s.Manager(g.Name); err == nil {
			n = len(groups.Procs(m))
		}
		entries = append(entries, groupEntry{g, n})
	}
	if *asJSON {
		return printJSON(entries)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tPROCS\tLIMITS")
	for _, e := range entries {
		fmt.Fprintf(w, "%s\t%d\t%s\n", e.Name, e.Procs, limitsLine(&e.Resources))
	}
	return w.Flush()
}

// limitsLine is a group's limits in the flags' own words.
func limitsLine(r *config.Resources) string {
	var out []string
	add := func(name string, v any) { out = append(out, fmt.Sprintf("%s=%v", name, v)) }
	if r.MemoryLimit != nil {
		add("memory", *r.MemoryLimit)
	}
	if r.MemorySwap != nil {
		add("memory-swap", *r.MemorySwap)
	}
	if r.CPUQuota != nil && r.CPUPeriod != nil && *r.CPUPeriod > 0 {
		add("cpus", strconv.FormatFloat(float64(*r.CPUQuota)/float64(*r.CPUPeriod), 'f', -1, 64))
	}
	if r.CPUShares != nil {
		add("cpu-shares", *r.CPUShares)
	}
	if r.CPUs != "" {
		add("cpuset-cpus", r.CPUs)
	}
	if r.BlkioWeight != nil {
		add("io-weight", *r.BlkioWeight)
	}
	if r.PidsLimit != nil {
		add("pids-limit", *r.PidsLimit)
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, " ")
}

func groupStats(s *groups.Store, args []string) error {
	fs := newFlags("group stats")
	asJSON := fs.Bool("json", false, "print JSON")
	rest, err := parse(fs, args, exactly(1), "lkc group stats [--json] NAME")
	if err != nil {
		return err
	}
	st, err := s.Stats(rest[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(st)
	}
	u := st.Usage
	w := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(w, "group\t%s\nlimits\t%s\nprocesses\t%d %v\n", st.Name, limitsLine(&st.Limits), len(st.Pids), st.Pids)
	fmt.Fprintf(w, "memory\t%d bytes (max %d, failcnt %d)\n", u.Memory.Usage.Usage, u.Memory.Usage.Max, u.Memory.Usage.Failcnt)
	fmt.Fprintf(w, "cpu\t%d ns (throttled %d of %d periods)\n", u.CPU.Usage.Total, u.CPU.Throttling.ThrottledPeriods, u.CPU.Throttling.Periods)
	fmt.Fprintf(w, "pids\t%d\n", u.Pids.Current)
	return w.Flush()
}
