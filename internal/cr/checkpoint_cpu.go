package cr

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// dumpPin keeps a dump on one CPU: CRIU's parasite answers CRIU's
// commands from inside each task, one command at a time (a 1 GiB dump
// sends ~260), so each command wakes the task and then CRIU again. When
// the two sit on different CPUs every wake-up crosses CPUs, and under a
// hypervisor that means waking a halted virtual CPU: 100-200 µs a command
// instead of ~50 here, and now and then a stall of several ms
// (docs/criu.md). The CPU is the one the task with the most resident
// memory last ran on, which its drain keeps busiest.
type dumpPin struct {
	cpu   int // -1: nothing pinned
	saved map[int]unix.CPUSet
}

// pinForDump moves every thread of pids to one CPU, where lkc may run as
// well, and returns it for CRIU; release gives the threads their own CPUs
// back. A thread its cpuset keeps off that CPU stays where it is.
func pinForDump(pids []int) *dumpPin {
	p := &dumpPin{cpu: -1}
	var own unix.CPUSet
	if unix.SchedGetaffinity(0, &own) != nil || own.Count() < 2 {
		return p
	}
	cpu := busiestCPU(pids)
	if cpu < 0 || !own.IsSet(cpu) {
		return p
	}
	var one unix.CPUSet
	one.Set(cpu)
	p.cpu, p.saved = cpu, map[int]unix.CPUSet{}
	for _, pid := range pids {
		tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
		if err != nil {
			continue
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			var old unix.CPUSet
			if unix.SchedGetaffinity(tid, &old) != nil || !old.IsSet(cpu) || old == one {
				continue
			}
			if unix.SchedSetaffinity(tid, &one) == nil {
				p.saved[tid] = old
			}
		}
	}
	return p
}

// release restores the threads' own CPU sets; a second call does nothing.
func (p *dumpPin) release() {
	for tid, old := range p.saved {
		unix.SchedSetaffinity(tid, &old)
	}
	p.saved = nil
}

// busiestCPU is the CPU the process of pids with the most resident pages
// last ran on, or -1.
func busiestCPU(pids []int) int {
	best, cpu := -1, -1
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid)
		statm, err := os.ReadFile(dir + "/statm")
		if err != nil {
			continue
		}
		f := bytes.Fields(statm)
		if len(f) < 2 {
			continue
		}
		rss, err := strconv.Atoi(string(f[1]))
		if err != nil || rss <= best {
			continue
		}
		stat, err := os.ReadFile(dir + "/stat")
		if err != nil {
			continue
		}
		if c := lastCPU(stat); c >= 0 {
			best, cpu = rss, c
		}
	}
	return cpu
}

// lastCPU reads field 39 (processor) of a /proc/<pid>/stat line.
func lastCPU(stat []byte) int {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return -1
	}
	// Fields after the command start at field 3 (state).
	f := bytes.Fields(stat[end+1:])
	if len(f) < 39-2 {
		return -1
	}
	cpu, err := strconv.Atoi(string(f[39-3]))
	if err != nil {
		return -1
	}
	return cpu
}
