package integration

import (
	"os"
	"path/filepath"
	"testing"
)

// A container that arrived through `lkc serve` takes its bundle with it
// when it is deleted there, so the same id can arrive again.
func TestMigrateDeleteRemovesBundle(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	h.startServe(b)
	id, _ := h.runContainer(a, migCounter, nil)
	mustMigrate(t, h, a, b, id, "--shared-storage", "--mode", "stopcopy")
	bundle := filepath.Join(b.bundles, id)
	if _, err := os.Stat(filepath.Join(bundle, "config.json")); err != nil {
		t.Fatalf("the arrived container's bundle: %v", err)
	}
	b.e.mustLkc("delete", "--force", id)
	if _, err := os.Lstat(bundle); !os.IsNotExist(err) {
		t.Fatalf("deleting %s on the target left its bundle %s (%v)", id, bundle, err)
	}
	h.runContainerID(a, id, migCounter, nil)
	mustMigrate(t, h, a, b, id, "--shared-storage", "--mode", "stopcopy")
	b.e.waitStatus(id, "running")
}

// A container whose id ends in ".pending" is not taken for the mark of an
// unfinished migration of another: a restarted receiver keeps both.
func TestMigrateDottedIDSurvivesRestart(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	h.startServe(b)
	id, _ := h.runContainer(a, migCounter, nil)
	dotted := id + ".pending"
	h.runContainerID(a, dotted, migCounter, nil)
	for _, c := range []string{id, dotted} {
		mustMigrate(t, h, a, b, c, "--shared-storage", "--mode", "stopcopy")
	}
	b.killServe()
	h.startServe(b)
	for _, c := range []string{id, dotted} {
		if r := b.e.lkc("state", c); r.code != 0 {
			log, _ := os.ReadFile(b.serveLog)
			t.Fatalf("container %s is gone after the receiver's restart: %v\nreceiver log:\n%s", c, r, log)
		}
		b.e.waitStatus(c, "running")
		if _, err := os.Stat(filepath.Join(b.bundles, c, "config.json")); err != nil {
			t.Errorf("the bundle of %s after the receiver's restart: %v", c, err)
		}
	}
}
