package checkpoint

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLazyPagesBackground: a daemon sent to the background runs at the
// lowest priority, and, where the kernel groups sessions for scheduling
// (autogroup), so does its session's group, without which its own nice
// would weigh nothing against other sessions.
func TestLazyPagesBackground(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // as StartLazyPages
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lp := &LazyPages{cmd: cmd}
	// Without CAP_SYS_ADMIN the kernel takes one autogroup nice per 100 ms
	// from anyone, and answers EAGAIN meanwhile.
	err := lp.Background()
	for deadline := time.Now().Add(2 * time.Second); errors.Is(err, syscall.EAGAIN) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		err = lp.Background()
	}
	if err != nil {
		t.Fatal(err)
	}
	nice, err := syscall.Getpriority(syscall.PRIO_PROCESS, cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// The raw syscall returns 20 - nice.
	if got := 20 - nice; got != backgroundNice {
		t.Errorf("nice %d, want %d", got, backgroundNice)
	}
	ag, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/autogroup")
	if os.IsNotExist(err) {
		t.Log("no autogroup scheduling in this kernel")
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(strings.TrimSpace(string(ag)), "nice "+strconv.Itoa(backgroundNice)) {
		t.Errorf("autogroup %q, want nice %d", strings.TrimSpace(string(ag)), backgroundNice)
	}
}
