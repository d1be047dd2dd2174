package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
)

// outerMain validates the flags, creates the temporary directory, runs the
// measure role in a private mount namespace and cleans up after it, even if
// it crashed or was interrupted.
func outerMain(args []string) (int, error) {
	cfg, err := parseConfig(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0, nil
	}
	if err != nil {
		return 2, err
	}
	if cfg.list {
		return 0, listScenarios(os.Stdout)
	}
	scs, err := selectScenarios(scenarios(), cfg.scenarios)
	if err == nil {
		err = checkVariantNames(scs, cfg.variants, cfg.baseline)
	}
	if err != nil {
		return 2, err
	}
	if os.Geteuid() != 0 {
		return 1, errors.New("must run as root: the runtimes create namespaces and cgroups")
	}
	dir, err := os.MkdirTemp("", "lkcbench-")
	if err != nil {
		return 1, fmt.Errorf("creating temporary directory: %w", err)
	}
	defer cleanupOuter(dir)

	// The measure role handles SIGINT/SIGTERM itself; here they must only
	// not kill us before cleanup. (signal.Ignore would be inherited.)
	signal.Notify(make(chan os.Signal, 1), os.Interrupt, syscall.SIGTERM)
	return runMeasureRole(args, dir)
}

// runMeasureRole re-executes this binary with CLONE_NEWNS; Go makes the new
// namespace's mounts recursively private before exec.
func runMeasureRole(args []string, dir string) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 1, fmt.Errorf("locating own executable: %w", err)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), roleEnv+"="+roleMeasure, dirEnv+"="+dir)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	err = cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return max(exitErr.ExitCode(), 1), nil // the child reported already
	}
	if err != nil {
		return 1, fmt.Errorf("running measure role: %w", err)
	}
	return 0, nil
}

// cleanupOuter removes cgroups named after this run's containers (the
// temporary directory's base name prefixes every container id) and the
// temporary directory itself. It reports but does not fail on problems.
func cleanupOuter(dir string) {
	for _, p := range sweepCgroups("/sys/fs/cgroup", filepath.Base(dir)) {
		fmt.Fprintf(os.Stderr, "bench: cleanup: %v\n", p)
	}
	if base, err := ownCgroupBase(); err == nil {
		removeEmptyAbove("/sys/fs/cgroup", base)
	}
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintf(os.Stderr, "bench: cleanup: %v\n", err)
	}
}
