package oompolicy

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestResolvingWaitsForTheVictim: while the process the policy killed last
// has not exited, or after the kernel's OOM killer took a task (v2's
// memory.events oom_kill rose), kill waits instead of taking a bystander
// (TestOOMGroupPolicy once saw the group's shell killed).
func TestResolvingWaitsForTheVictim(t *testing.T) {
	s := &Service{}
	a := &armed{dir: t.TempDir()}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("starting sleep: %v", err)
	}
	fd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Skipf("pidfd_open: %v", err)
	}
	a.setVictim(os.NewFile(uintptr(fd), "pidfd"))
	if why := s.resolving(a); why == "" {
		t.Errorf("the last victim runs: want kill to wait")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if why := s.resolving(a); why != "" || a.victim != nil {
		t.Errorf("the last victim exited: resolving %q (victim %v), want none", why, a.victim)
	}

	a.v2 = true
	events := filepath.Join(a.dir, "memory.events")
	write := func(text string) {
		if err := os.WriteFile(events, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("low 0\nhigh 12\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n")
	a.kernelKills = 1
	if why := s.resolving(a); why != "" {
		t.Errorf("no kernel kill since the last look: resolving %q", why)
	}
	write("low 0\nhigh 15\nmax 5\noom 2\noom_kill 2\noom_group_kill 0\n")
	if why := s.resolving(a); why == "" {
		t.Errorf("the kernel killed at memory.max: want kill to wait")
	}
	if why := s.resolving(a); why != "" {
		t.Errorf("the same kernel kill counted twice: resolving %q", why)
	}
}
