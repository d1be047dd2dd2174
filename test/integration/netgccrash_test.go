package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNetworkGCAtDaemonStartAcrossWorkerKill: the worker is SIGKILLed
// while its start's collection runs a stale attachment's DEL (the bridge
// plugin, held by a wrapper until the test lets it go). The plugin runs
// on in its own right; the next worker's start collects the attachment
// again, and once both are done the lease, the veth and the rules are
// gone and the daemon's log says so: a kill in the middle loses nothing
// and leaks nothing.
func TestNetworkGCAtDaemonStartAcrossWorkerKill(t *testing.T) {
	d := newDaemonEnv(t)
	c, addr := d.staleAttachment()

	plugins, ctl := pluginsWithout(t, "bridge"), t.TempDir()
	if err := os.WriteFile(filepath.Join(ctl, "first"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// The first DEL waits for "go", then says when it is done; the others
	// run at once.
	wrapper := "#!/bin/sh\n" +
		"if [ \"$CNI_COMMAND\" = DEL ] && rm " + ctl + "/first 2>/dev/null; then\n" +
		"  touch " + ctl + "/started\n" +
		"  while [ ! -e " + ctl + "/go ]; do sleep 0.05; done\n" +
		"  /usr/lib/cni/bridge \"$@\"; rc=$?; touch " + ctl + "/done; exit $rc\n" +
		"fi\n" +
		"exec /usr/lib/cni/bridge \"$@\"\n"
	if err := os.WriteFile(filepath.Join(plugins, "bridge"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(filepath.Join(ctl, "go"), nil, 0o600) }) // never leave the plugin waiting
	t.Setenv("LKC_CNI_PATH", plugins)
	st := d.start()
	waitFor(t, func() bool {
		_, err := os.Stat(filepath.Join(ctl, "started"))
		return err == nil
	}, "the collection's DEL to start")
	kill9(t, st.WorkerPid)
	if st2 := d.status(); st2.WorkerPid == st.WorkerPid {
		t.Fatalf("worker %d still answers after SIGKILL", st.WorkerPid)
	}
	for deadline := time.Now().Add(settle); c.leaseOf(addr); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the next worker's start did not collect the lease of %s", addr)
		}
	}
	if err := os.WriteFile(filepath.Join(ctl, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Count(d.daemonLog(), "netgc: removed 1 stale attachments") == 1 },
		"the next worker to log what it collected")
	waitFor(t, func() bool {
		_, err := os.Stat(filepath.Join(ctl, "done"))
		return err == nil
	}, "the killed worker's DEL to end")
	c.assertReleased(addr)
	if out := d.mustLkc("network", "gc"); strings.Contains(out, "removed 1") {
		t.Errorf("a gc after both found the attachment again: %q", out)
	}
}
