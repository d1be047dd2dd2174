package main

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
)

const (
	rootfsEnv        = "LKC_BENCH_ROOTFS"
	floorCloneFlags  = syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWNET | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC
	floorDescription = "floor: clone(pid,mnt,net,uts,ipc ns) + pivot_root + exec /bin/true, by a Go helper"
)

// floorVariant is the bare cost of what every runtime must do at least:
// new namespaces, a root switch and an exec. It includes the Go runtime
// start-up of the helper (this binary re-executed in the floor role).
func floorVariant(env *Env) Variant {
	return Variant{
		Name:    "floor",
		Desc:    floorDescription,
		Prepare: func() (string, error) { return "re-exec of " + env.Self + " in the floor role", nil },
		Run: func(ctx context.Context, _ int) (Sample, error) {
			ctx, cancel := context.WithTimeout(ctx, env.Timeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, env.Self)
			cmd.Env = []string{roleEnv + "=" + roleFloor, rootfsEnv + "=" + env.Rootfs}
			cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: floorCloneFlags}
			return env.runner.measure(cmd)
		},
		Cleanup: func() error { return nil },
	}
}

// floorMain runs in the new namespaces: it switches root to rootfs and
// execs /bin/true, returning only on failure.
func floorMain(rootfs string) error {
	if err := pivotInto(rootfs); err != nil {
		return err
	}
	err := syscall.Exec("/bin/true", []string{"true"}, nil)
	return fmt.Errorf("exec /bin/true: %w", err)
}

func pivotInto(rootfs string) error {
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / private: %w", err)
	}
	// pivot_root needs the new root to be a mount point.
	if err := syscall.Mount(rootfs, rootfs, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mounting %s: %w", rootfs, err)
	}
	if err := syscall.Chdir(rootfs); err != nil {
		return fmt.Errorf("entering %s: %w", rootfs, err)
	}
	if err := syscall.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := syscall.Unmount(".", syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the old root: %w", err)
	}
	if err := syscall.Chdir("/"); err != nil {
		return fmt.Errorf("entering the new root: %w", err)
	}
	return nil
}
