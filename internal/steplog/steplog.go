// Package steplog times the steps of an lkc command for --debug: each
// step's name and duration, and the command lines lkc runs (CRIU's), as
// debug entries the CLI writes to its log. The CLI turns it on once, before
// any work; off, a step costs one nil check, because the start latency of
// `run` is lkc's benchmark.
package steplog

import (
	"fmt"
	"time"
)

// Entry is one debug message; a step's end also has its name and duration.
type Entry struct {
	Msg      string
	Step     string
	Duration time.Duration
}

var sink func(Entry)

// Enable sends every later entry to s. Call it before any goroutine logs.
func Enable(s func(Entry)) { sink = s }

// On reports whether entries are wanted, for a caller that would do work
// (formatting a request) only to log it.
func On() bool { return sink != nil }

func nop() {}

// Step starts step name and returns what ends it, logging its duration:
// `defer steplog.Step("create: cgroup")()`.
func Step(name string) func() {
	if sink == nil {
		return nop
	}
	start := time.Now()
	return func() {
		d := time.Since(start)
		sink(Entry{Msg: fmt.Sprintf("step %s took %v", name, d), Step: name, Duration: d})
	}
}

// Printf logs a debug message.
func Printf(format string, args ...any) {
	if sink != nil {
		sink(Entry{Msg: fmt.Sprintf(format, args...)})
	}
}
