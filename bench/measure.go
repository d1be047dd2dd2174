package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Sample is one timed operation.
type Sample struct {
	Wall time.Duration // from just before fork to the reaping of the process
	CPU  time.Duration // user+sys of the process and its reaped descendants
	// Walls, when set, are many timed operations of one run (the rules
	// scenario's every exec in a storm), each a wall sample; Wall is then
	// unused and CPU is the run's.
	Walls []time.Duration
}

// runner starts timed processes with stdin/stdout on /dev/null and stderr in
// a file, so no pipe-copying goroutine runs during a measurement and no
// daemonized descendant can hold up Wait.
type runner struct {
	null   *os.File
	stderr *os.File
}

func newRunner(dir string) (*runner, error) {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", os.DevNull, err)
	}
	stderr, err := os.CreateTemp(dir, "stderr-")
	if err != nil {
		null.Close()
		return nil, fmt.Errorf("creating stderr file: %w", err)
	}
	return &runner{null: null, stderr: stderr}, nil
}

func (r *runner) close() {
	r.null.Close()
	r.stderr.Close()
}

// measure runs cmd to completion and times it. The CPU time comes from the
// wait4 rusage, which covers every descendant the process reaped.
func (r *runner) measure(cmd *exec.Cmd) (Sample, error) {
	if err := r.resetStderr(); err != nil {
		return Sample{}, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r.null, r.null, r.stderr
	start := time.Now()
	err := cmd.Run()
	s := Sample{Wall: time.Since(start)}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			s.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	if err != nil {
		return s, fmt.Errorf("%s: %w%s", strings.Join(cmd.Args, " "), err, r.stderrTail())
	}
	return s, nil
}

func (r *runner) resetStderr() error {
	if err := r.stderr.Truncate(0); err != nil {
		return fmt.Errorf("truncating stderr file: %w", err)
	}
	if _, err := r.stderr.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewinding stderr file: %w", err)
	}
	return nil
}

// stderrTail returns ": <last line of stderr>", or "" if stderr is empty.
func (r *runner) stderrTail() string {
	const maxTail = 4096
	fi, err := r.stderr.Stat()
	if err != nil {
		return ""
	}
	off := max(fi.Size()-maxTail, 0)
	buf := make([]byte, fi.Size()-off)
	n, _ := r.stderr.ReadAt(buf, off)
	text := strings.TrimSpace(string(buf[:n]))
	if text == "" {
		return ""
	}
	return ": " + text[strings.LastIndexByte(text, '\n')+1:]
}
