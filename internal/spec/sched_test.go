package spec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/config"
)

// fakeOnline points sysRoot at a tree whose online CPUs are list.
func fakeOnline(t *testing.T, list string) {
	t.Helper()
	old := sysRoot
	sysRoot = t.TempDir()
	t.Cleanup(func() { sysRoot = old })
	dir := filepath.Join(sysRoot, "devices/system/cpu")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "online"), []byte(list+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func schedProcess() *specs.Process {
	return &specs.Process{Args: []string{"sh"}, Cwd: "/"}
}

func TestConvertSchedAccepts(t *testing.T) {
	fakeOnline(t, "0-3")
	p := schedProcess()
	p.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Nice: 5, Flags: []specs.LinuxSchedulerFlag{specs.SchedFlagResetOnFork}}
	p.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 3}
	p.ExecCPUAffinity = &specs.CPUAffinity{Initial: " 3, 1,", Final: "0-1,2"}
	out, err := ConvertProcess(p)
	if err != nil {
		t.Fatal(err)
	}
	want := &config.Scheduler{Policy: "SCHED_BATCH", Nice: 5, Flags: []string{"SCHED_FLAG_RESET_ON_FORK"}}
	if !reflect.DeepEqual(out.Scheduler, want) {
		t.Errorf("scheduler %+v, want %+v", out.Scheduler, want)
	}
	if policy, flags := out.Scheduler.Attr(); policy != 3 || flags != 1 {
		t.Errorf("Attr() = %d, %#x; want 3 (SCHED_BATCH), 0x1", policy, flags)
	}
	if out.IOPriority.Value() != 2<<13|3 {
		t.Errorf("ioprio value %#x, want %#x", out.IOPriority.Value(), 2<<13|3)
	}
	if a := out.ExecCPUAffinity; a.Initial != "3,1" || a.Final != "0-1,2" {
		t.Errorf("affinity %+v, want initial 3,1 (blanks and empty entries dropped) final 0-1,2", a)
	}

	p.Scheduler = &specs.Scheduler{Policy: specs.SchedFIFO, Priority: 99}
	p.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE}
	p.ExecCPUAffinity = &specs.CPUAffinity{}
	if out, err = ConvertProcess(p); err != nil || out.ExecCPUAffinity != nil {
		t.Errorf("FIFO 99, IDLE, empty affinity: %v, affinity %+v (want nil)", err, out.ExecCPUAffinity)
	}
	p.Scheduler = &specs.Scheduler{Policy: specs.SchedDeadline, Nice: 19, Runtime: 42000, Deadline: 100000, Period: 1000000}
	if _, err = ConvertProcess(p); err != nil {
		t.Errorf("runc's SCHED_DEADLINE example: %v", err)
	}
	p.Scheduler.Period = 0
	if _, err = ConvertProcess(p); err != nil {
		t.Errorf("SCHED_DEADLINE with period 0 (the deadline): %v", err)
	}
}

func TestConvertSchedRefuses(t *testing.T) {
	fakeOnline(t, "0-1")
	sched := func(s specs.Scheduler) func(*specs.Process) {
		return func(p *specs.Process) { p.Scheduler = &s }
	}
	io := func(class specs.IOPriorityClass, prio int) func(*specs.Process) {
		return func(p *specs.Process) { p.IOPriority = &specs.LinuxIOPriority{Class: class, Priority: prio} }
	}
	aff := func(initial, final string) func(*specs.Process) {
		return func(p *specs.Process) { p.ExecCPUAffinity = &specs.CPUAffinity{Initial: initial, Final: final} }
	}
	for _, tc := range []struct {
		name string
		set  func(*specs.Process)
		want string
	}{
		{"no policy", sched(specs.Scheduler{Nice: 1}), "process.scheduler.policy is missing"},
		{"unknown policy", sched(specs.Scheduler{Policy: "SCHED_FAST"}), `process.scheduler.policy "SCHED_FAST" is not a policy (SCHED_BATCH,`},
		{"nice low", sched(specs.Scheduler{Policy: specs.SchedOther, Nice: -21}), "process.scheduler.nice -21 is out of range -20..19"},
		{"nice high", sched(specs.Scheduler{Policy: specs.SchedBatch, Nice: 20}), "process.scheduler.nice 20 is out of range"},
		{"fifo priority 0", sched(specs.Scheduler{Policy: specs.SchedFIFO}), "process.scheduler.priority 0 is out of range 1..99 for SCHED_FIFO"},
		{"rr priority 100", sched(specs.Scheduler{Policy: specs.SchedRR, Priority: 100}), "process.scheduler.priority 100 is out of range 1..99 for SCHED_RR"},
		{"priority on batch", sched(specs.Scheduler{Policy: specs.SchedBatch, Priority: 5}), "process.scheduler.priority 5: only SCHED_FIFO and SCHED_RR take a priority, not SCHED_BATCH"},
		{"deadline params on other", sched(specs.Scheduler{Policy: specs.SchedOther, Runtime: 5000}), "process.scheduler.runtime/deadline/period are for SCHED_DEADLINE only, not SCHED_OTHER"},
		{"period on fifo", sched(specs.Scheduler{Policy: specs.SchedFIFO, Priority: 1, Period: 1}), "for SCHED_DEADLINE only, not SCHED_FIFO"},
		{"deadline without params", sched(specs.Scheduler{Policy: specs.SchedDeadline}), "SCHED_DEADLINE needs 1024 <= runtime <= deadline <= period"},
		{"deadline runtime > deadline", sched(specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 20000, Deadline: 10000}), "got runtime 20000, deadline 10000, period 0"},
		{"deadline > period", sched(specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 2000, Deadline: 10000, Period: 5000}), "SCHED_DEADLINE needs"},
		{"unknown flag", sched(specs.Scheduler{Policy: specs.SchedOther, Flags: []specs.LinuxSchedulerFlag{"SCHED_FLAG_FAST"}}), `process.scheduler.flags: "SCHED_FLAG_FAST" is not a flag`},
		{"bad class", io("IOPRIO_CLASS_NONE", 0), `process.ioPriority.class "IOPRIO_CLASS_NONE" is not a class (IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE, IOPRIO_CLASS_RT)`},
		{"class missing", io("", 4), `process.ioPriority.class "" is not a class`},
		{"priority 8", io(specs.IOPRIO_CLASS_BE, 8), "process.ioPriority.priority 8 is out of range 0..7"},
		{"priority -1", io(specs.IOPRIO_CLASS_RT, -1), "process.ioPriority.priority -1 is out of range 0..7"},
		{"list garbage", aff("zero", ""), `process.execCPUAffinity.initial: "zero" is not a list of numbers and ranges`},
		{"list reversed", aff("", "1-0"), `process.execCPUAffinity.final: "1-0" is not a list`},
		{"inner blank", aff("0 - 1", ""), "process.execCPUAffinity.initial:"},
		{"only commas", aff(",", ""), `process.execCPUAffinity.initial "," names no CPU`},
		{"only blanks", aff("", " "), `process.execCPUAffinity.final " " names no CPU`},
		{"offline cpu", aff("", "0,7"), `process.execCPUAffinity.final "0,7" names [7], which the host does not have online`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := schedProcess()
			tc.set(p)
			_, err := ConvertProcess(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%v: want one line of class ErrInvalid", err)
			}
		})
	}
}

func TestFeaturesListProcessSched(t *testing.T) {
	a := Features().Annotations
	for _, k := range []string{"org.lkc.process.scheduler.enabled", "org.lkc.process.ioPriority.enabled", "org.lkc.process.execCPUAffinity.enabled"} {
		if a[k] != "true" {
			t.Errorf("features annotation %s = %q, want true", k, a[k])
		}
	}
}
