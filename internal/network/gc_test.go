package network

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// cacheEntry writes libcni's cache file of an attachment of network n,
// interface ifName, of container id pinned in stateDir.
func cacheEntry(t *testing.T, cacheDir, n, id, ifName, stateDir string) {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"kind": "cniCacheV1", "containerId": id, "ifName": ifName, "networkName": n,
		"netns":  filepath.Join(stateDir, pinName),
		"config": []byte(`{"cniVersion":"1.0.0","name":"` + n + `","plugins":[{"type":"lkc-no-such-plugin"}]}`),
		"result": map[string]any{"cniVersion": "1.0.0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := cachePath(cacheDir, n, id, ifName)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCollectKeepsLiveAndForeign: an attachment whose state directory
// has its network record is kept, one whose container id is not the hash
// of its directory is not lkc's and is left alone; neither runs a plugin
// (none exists here, so a DEL would fail).
func TestCollectKeepsLiveAndForeign(t *testing.T) {
	cacheDir, root := t.TempDir(), t.TempDir()
	live := filepath.Join(root, "live")
	if err := os.MkdirAll(live, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(live, recordName), []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cacheEntry(t, cacheDir, "n", containerID(live), "eth0", live)
	cacheEntry(t, cacheDir, "n", containerID(live), "eth1", live)
	cacheEntry(t, cacheDir, "n", "podman0123", "eth0", filepath.Join(root, "gone"))
	c, err := Collect(context.Background(), cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	if c.String() != "removed 0 stale attachments, kept 2 of live containers" {
		t.Errorf("collected %q", c)
	}
}

// TestCollectFailureNamesNetworkAndContainer: a stale attachment whose DEL
// fails is counted and named, and stays cached.
func TestCollectFailureNamesNetworkAndContainer(t *testing.T) {
	t.Setenv("LKC_CNI_PATH", t.TempDir())
	cacheDir, gone := t.TempDir(), filepath.Join(t.TempDir(), "gone")
	cacheEntry(t, cacheDir, "n", containerID(gone), "eth0", gone)
	c, err := Collect(context.Background(), cacheDir)
	if err == nil || c.Failed != 1 || len(c.Removed) != 0 {
		t.Fatalf("collected %v, %v; want one failure", c, err)
	}
	if want := "network n, container " + gone + ": "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
	if _, err := os.Stat(cachePath(cacheDir, "n", containerID(gone), "eth0")); err != nil {
		t.Errorf("the failed attachment left the cache: %v", err)
	}
}

// TestAttachmentLocks: two containers' locks do not conflict, and the
// whole-file lock conflicts with each.
func TestAttachmentLocks(t *testing.T) {
	dir := t.TempDir()
	a, b := containerID("/run/lkc/a"), containerID("/run/lkc/b")
	unlockA, err := lockAttachments(dir, a)
	if err != nil {
		t.Fatal(err)
	}
	if !tryLock(t, dir, lockOffset(b), 1) {
		t.Error("container b's lock conflicts with a's")
	}
	if tryLock(t, dir, 0, 0) {
		t.Error("the whole-file lock was granted while a container's was held")
	}
	unlockA()
	if !tryLock(t, dir, 0, 0) {
		t.Error("the whole-file lock was refused once no container's was held")
	}
}

// tryLock says whether another open file description may write-lock
// len bytes at start of the attachment lock in dir (0: to the end).
func tryLock(t *testing.T, dir string, start, len int64) bool {
	f, err := os.OpenFile(filepath.Join(dir, attachLockName), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &unix.Flock_t{Type: unix.F_WRLCK, Start: start, Len: len})
	if err != nil && err != unix.EAGAIN && err != unix.EACCES {
		t.Fatal(err)
	}
	return err == nil
}

func TestCmpIfName(t *testing.T) {
	if cmpIfName("eth2", "eth10") >= 0 || cmpIfName("eth1", "eth0") <= 0 || cmpIfName("eth3", "eth3") != 0 {
		t.Error("cmpIfName does not order ethN by N")
	}
}
