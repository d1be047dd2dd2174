package spec

import (
	"path/filepath"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/config"
)

// dlMinRuntime is the least SCHED_DEADLINE runtime the kernel takes: it
// drops the low 10 bits (DL_SCALE).
const dlMinRuntime = 1 << 10

// convertSched checks process.scheduler, process.ioPriority and
// process.execCPUAffinity by runc's rules (and the kernel's, where runc
// leaves them to it) and copies them into p.
func convertSched(sp *specs.Process, p *config.Process) error {
	var err error
	if p.Scheduler, err = convertScheduler(sp.Scheduler); err != nil {
		return err
	}
	if p.IOPriority, err = convertIOPriority(sp.IOPriority); err != nil {
		return err
	}
	p.ExecCPUAffinity, err = convertCPUAffinity(sp.ExecCPUAffinity)
	return err
}

func convertScheduler(s *specs.Scheduler) (*config.Scheduler, error) {
	if s == nil {
		return nil, nil
	}
	policy := string(s.Policy)
	if policy == "" {
		return nil, invalid("process.scheduler.policy is missing")
	}
	if _, ok := config.SchedPolicies[policy]; !ok {
		return nil, invalid("process.scheduler.policy %q is not a policy (%s)", policy, names(config.SchedPolicies))
	}
	if s.Nice < -20 || s.Nice > 19 {
		return nil, invalid("process.scheduler.nice %d is out of range -20..19", s.Nice)
	}
	realtime := s.Policy == specs.SchedFIFO || s.Policy == specs.SchedRR
	if realtime && (s.Priority < 1 || s.Priority > 99) {
		return nil, invalid("process.scheduler.priority %d is out of range 1..99 for %s", s.Priority, policy)
	}
	if !realtime && s.Priority != 0 {
		return nil, invalid("process.scheduler.priority %d: only SCHED_FIFO and SCHED_RR take a priority, not %s", s.Priority, policy)
	}
	if err := checkDeadline(s); err != nil {
		return nil, err
	}
	out := &config.Scheduler{Policy: policy, Nice: s.Nice, Priority: s.Priority,
		Runtime: s.Runtime, Deadline: s.Deadline, Period: s.Period}
	for _, f := range s.Flags {
		if _, ok := config.SchedFlags[string(f)]; !ok {
			return nil, invalid("process.scheduler.flags: %q is not a flag (%s)", f, names(config.SchedFlags))
		}
		out.Flags = append(out.Flags, string(f))
	}
	return out, nil
}

// checkDeadline refuses runtime, deadline and period on a policy other
// than SCHED_DEADLINE (runc's rule), and on SCHED_DEADLINE what
// sched_setattr(2) would: runtime <= deadline <= period (0: the deadline),
// a runtime of at least 1024 ns.
func checkDeadline(s *specs.Scheduler) error {
	if s.Policy != specs.SchedDeadline {
		if s.Runtime != 0 || s.Deadline != 0 || s.Period != 0 {
			return invalid("process.scheduler.runtime/deadline/period are for SCHED_DEADLINE only, not %s", s.Policy)
		}
		return nil
	}
	period := s.Period
	if period == 0 {
		period = s.Deadline
	}
	if s.Runtime < dlMinRuntime || s.Deadline < s.Runtime || period < s.Deadline || s.Deadline >= 1<<63 || period >= 1<<63 {
		return invalid("process.scheduler: SCHED_DEADLINE needs %d <= runtime <= deadline <= period (0: the deadline) ns; got runtime %d, deadline %d, period %d",
			dlMinRuntime, s.Runtime, s.Deadline, s.Period)
	}
	return nil
}

func convertIOPriority(io *specs.LinuxIOPriority) (*config.IOPriority, error) {
	if io == nil {
		return nil, nil
	}
	class := string(io.Class)
	if _, ok := config.IOPrioClasses[class]; !ok {
		return nil, invalid("process.ioPriority.class %q is not a class (%s)", class, names(config.IOPrioClasses))
	}
	if io.Priority < 0 || io.Priority > 7 {
		return nil, invalid("process.ioPriority.priority %d is out of range 0..7", io.Priority)
	}
	return &config.IOPriority{Class: class, Priority: io.Priority}, nil
}

func convertCPUAffinity(a *specs.CPUAffinity) (*config.CPUAffinity, error) {
	if a == nil || (a.Initial == "" && a.Final == "") {
		return nil, nil
	}
	online := readIDList(filepath.Join(sysRoot, "devices/system/cpu/online"))
	initial, err := cpuList("process.execCPUAffinity.initial", a.Initial, online)
	if err != nil {
		return nil, err
	}
	final, err := cpuList("process.execCPUAffinity.final", a.Final, online)
	if err != nil {
		return nil, err
	}
	return &config.CPUAffinity{Initial: initial, Final: final}, nil
}

// cpuList checks a CPU list of execCPUAffinity and returns it without
// blanks and empty entries, which it takes as runc does ("0, 1,"); a list
// with no CPU in it is refused.
func cpuList(key, list string, online map[int]bool) (string, error) {
	if list == "" {
		return "", nil
	}
	var parts []string
	for _, part := range strings.Split(list, ",") {
		if part = strings.TrimSpace(part); part != "" {
			parts = append(parts, part)
		}
	}
	if len(parts) == 0 {
		return "", invalid("%s %q names no CPU", key, list)
	}
	norm := strings.Join(parts, ",")
	return norm, checkIDs(key, norm, online)
}

// names lists a table's keys for an error message, sorted.
func names[V any](table map[string]V) string {
	out := make([]string, 0, len(table))
	for k := range table {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
