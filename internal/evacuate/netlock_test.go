package evacuate

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/testutil"
)

// lockRules counts the lock rules in INPUT of the namespace at path.
func lockRules(t *testing.T, path, ipt string) int {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+path, ipt+"-save", "-t", "filter").CombinedOutput()
	if err != nil {
		t.Fatalf("%s-save: %v: %s", ipt, err, out)
	}
	return strings.Count(string(out), lockComment)
}

// TestLockNetnsAfterCrash: a restore --all that died while it held the
// lock (SIGKILL, a crash) left its DROP rules in the namespace, which cut
// it off for good; the next lock removes them, so its unlock leaves none.
func TestLockNetnsAfterCrash(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, tool := range []string{"iptables", "ip6tables", "nsenter", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	holder := exec.Command("unshare", "--net", "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	path := "/proc/" + strconv.Itoa(holder.Process.Pid) + "/ns/net"
	// Until unshare has made the namespace (it starts in the host's,
	// which lockNetns refuses to lock).
	for deadline := time.Now().Add(5 * time.Second); isHostNetns(path); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("unshare made no network namespace within 5 s")
		}
	}
	var warned []error
	warn := func(err error) { warned = append(warned, err) }
	lockNetns([]string{path}, warn) // the crashed run: never unlocked
	if n := lockRules(t, path, "iptables"); n != 1 {
		t.Fatalf("%d lock rules after a lock, want 1 (warnings %v)", n, warned)
	}
	unlock := lockNetns([]string{path}, warn)
	unlock()
	if len(warned) != 2 || !strings.Contains(warned[0].Error(), "removed 1 iptables lock rules an interrupted restore --all left") ||
		!strings.Contains(warned[1].Error(), "removed 1 ip6tables lock rules") {
		t.Errorf("warnings %v, want one of each stale rule removed", warned)
	}
	for _, ipt := range []string{"iptables", "ip6tables"} {
		if n := lockRules(t, path, ipt); n != 0 {
			t.Errorf("%s: %d lock rules left after the unlock", ipt, n)
		}
	}
}
