package cli

import (
	"runtime"
	"runtime/debug"
)

// goRuntime is how the Go runtime is set for one command: whether the
// garbage collector runs and how many Ps (GOMAXPROCS) there are. It is a
// column of the command table, and Main applies it, in setGoRuntime, before
// the command runs: no command changes either setting itself.
//
// Most commands live a few milliseconds or wait in one syscall, so a
// collection would only cost time; they run with the collector off, and
// with the Ps the runtime started with: changing GOMAXPROCS stops the world
// and frees the mcache of each P it drops, whose spans go back to the heap
// in fresh spanSet blocks (~50 page faults here), which cost more than the
// extra Ps of a command that lives a few milliseconds. containerd's runc
// shim (1.6 and 2.x) runs the runtime with GOMAXPROCS=4 in its environment,
// and the change from 4 to 1 cost 0.2-0.5 ms of each call of a pod's start
// (docs/journal/2026-12-06-cri.md).
// The commands that live long or allocate for seconds (serve, events,
// migrate) would grow without bound without it, so they run with it on.
// (`lkc init` is not a command of the table: its parent starts it with
// GOGC=off and GOMAXPROCS=1 in its environment, container.initFiles, so
// they hold from its runtime's start.)
type goRuntime struct {
	gc    bool // collector on (GOGC=100) rather than off
	procs int  // Ps; allCPUs for one per CPU, asStarted to keep them
}

const (
	// allCPUs asks for as many Ps as CPUs.
	allCPUs = -1
	// asStarted keeps the Ps the runtime started with (one per CPU, or
	// GOMAXPROCS from the environment).
	asStarted = 0
)

// The settings the command table uses.
var (
	// brief: short-lived, or waits in one syscall.
	brief = goRuntime{procs: asStarted}
	// forwarding: run and exec register the signals they forward from a
	// goroutine on a second P where there is a second CPU
	// (container.startForwarding). They get two from the start, because
	// every change of GOMAXPROCS stops the world and waits for the thread
	// holding each P, and lowering it to one only to raise it again cost
	// 0.1-0.5 ms here.
	forwarding = goRuntime{procs: 2}
	// allocating: a migration allocates for seconds (images, rootfs
	// stream) but its work is done by CRIU and the network.
	allocating = goRuntime{gc: true, procs: 1}
	// serving: lives until stopped (serve, daemon, an events stream,
	// stats and top). A one-shot
	// `events --stats` runs so too: it allocates far less than the 4 MB
	// at which the first collection starts, and one P per CPU is what the
	// runtime starts with, so setting it stops nothing.
	serving = goRuntime{gc: true, procs: allCPUs}
)

// setGoRuntime applies r to the running process.
func setGoRuntime(r goRuntime) {
	if r.gc {
		debug.SetGCPercent(100)
	} else {
		debug.SetGCPercent(-1)
	}
	if r.procs == asStarted {
		return
	}
	n := runtime.NumCPU()
	if r.procs != allCPUs {
		n = min(r.procs, n)
	}
	runtime.GOMAXPROCS(n)
}
