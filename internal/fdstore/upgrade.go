package fdstore

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// upgrade re-executes the holder as exe, keeping its fds, its pid and its
// worker w, which waits for the answer until exe's worker serves. It
// answers only when it fails; on success the next holder answers.
func (h *Holder) upgrade(w *worker, exe string) string {
	if err := checkExe(exe); err != nil {
		return "error " + err.Error()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.old != nil || w != h.worker {
		return "error an upgrade is already running"
	}
	st, err := h.handOver(w)
	if err != nil {
		return "error " + err.Error()
	}
	arg, _ := json.Marshal(st)
	h.Logf("upgrading to %s", exe)
	err = unix.Exec(exe, []string{"lkc", "daemon", "--holder", "--resume=" + string(arg)}, os.Environ())
	return fmt.Sprintf("error exec %s: %v", exe, err)
}

// handOver clears close-on-exec on every fd the next holder needs and
// describes them.
func (h *Holder) handOver(w *worker) (*Resume, error) {
	st := &Resume{Fds: map[string]int{}, Upgrade: true}
	for k, fd := range h.fds {
		st.Fds[k] = fd
	}
	cf, err := w.conn.c.File()
	if err != nil {
		return nil, fmt.Errorf("worker connection: %w", err)
	}
	st.Worker = &ResumeWorker{Pid: w.pid, Pidfd: w.pidfd, Conn: int(cf.Fd())}
	for _, fd := range append(mapValues(st.Fds), w.pidfd, int(cf.Fd())) {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			return nil, fmt.Errorf("clearing close-on-exec: %w", err)
		}
	}
	return st, nil
}

func mapValues(m map[string]int) []int {
	out := make([]int, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// checkExe refuses a binary that is not root's alone or that does not
// answer as lkc: a holder running it keeps every container's fds.
func checkExe(exe string) error {
	if !filepath.IsAbs(exe) {
		return fmt.Errorf("upgrade to %q: use an absolute path", exe)
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0:
		return fmt.Errorf("upgrade to %s: not an executable file", exe)
	case st.Uid != 0:
		return fmt.Errorf("upgrade to %s: owned by uid %d, not root", exe, st.Uid)
	case fi.Mode()&0o022 != 0:
		return fmt.Errorf("upgrade to %s: writable by others (mode %v)", exe, fi.Mode().Perm())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, exe, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "lkc version ") {
		return fmt.Errorf("upgrade to %s: `%s --version` does not answer as lkc (%v)", exe, exe, err)
	}
	return nil
}
