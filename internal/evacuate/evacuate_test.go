package evacuate

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// /dev/shm (a tmpfs wherever it exists) is volatile; a test's directory
// on disk is not.
func TestVolatile(t *testing.T) {
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) == nil && st.Type == unix.TMPFS_MAGIC {
		if v, err := volatile("/dev/shm"); err != nil || !v {
			t.Errorf("/dev/shm: %v %v, want volatile", v, err)
		}
	}
	dir := t.TempDir()
	if unix.Statfs(dir, &st) == nil && st.Type != unix.TMPFS_MAGIC && st.Type != unix.RAMFS_MAGIC && st.Type != unix.OVERLAYFS_SUPER_MAGIC {
		if v, err := volatile(dir); err != nil || v {
			t.Errorf("%s (fs %x): %v %v, want not volatile", dir, st.Type, v, err)
		}
	}
	if _, err := volatile(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing path: no error")
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/a\040b\134c`); got != `/a b\c` {
		t.Errorf("got %q", got)
	}
	if !within("/x/y", "/x") || within("/xy", "/x") || !within("/x", "/") {
		t.Error("within")
	}
}

// The restore's config is the kept one with only root.path changed.
func TestWriteConfig(t *testing.T) {
	dir := t.TempDir()
	kept := filepath.Join(dir, "kept.json")
	os.WriteFile(kept, []byte(`{"ociVersion":"1.0.2","root":{"path":"rootfs","readonly":true},"hostname":"h"}`), 0o600)
	if err := writeConfig(kept, dir, "/new/rootfs"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	var s struct {
		Root     map[string]any `json:"root"`
		Hostname string         `json:"hostname"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if s.Root["path"] != "/new/rootfs" || s.Root["readonly"] != true || s.Hostname != "h" {
		t.Errorf("written %s", data)
	}
}

// The image dir is made, or must be empty, and is held: a second
// checkpoint or restore --all of it is refused; a refusal removes what it
// made.
func TestMakeImageDir(t *testing.T) {
	base := t.TempDir()
	undo, unlock, err := makeImageDir(filepath.Join(base, "new"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := makeImageDir(filepath.Join(base, "new")); err == nil || !strings.Contains(err.Error(), "in use by another") {
		t.Errorf("a held dir: %v", err)
	}
	if _, err := lockImageDir(filepath.Join(base, "new")); err == nil {
		t.Error("a held dir: locked again")
	}
	unlock()
	undo()
	if _, err := os.Stat(filepath.Join(base, "new")); !os.IsNotExist(err) {
		t.Errorf("undo left the made dir: %v", err)
	}
	os.WriteFile(filepath.Join(base, "f"), nil, 0o600)
	if _, _, err := makeImageDir(base); err == nil || !strings.Contains(err.Error(), "is not empty (f)") {
		t.Errorf("non-empty dir: %v", err)
	}
	if _, _, err := makeImageDir(filepath.Join(base, "f")); err == nil {
		t.Error("a file: accepted")
	}
	if _, _, err := makeImageDir(filepath.Join(base, "no", "such")); err == nil {
		t.Error("a missing parent: accepted")
	}
}

// The estimate counts the pending containers' memory and saved rootfs.
func TestCheckRoom(t *testing.T) {
	dir := t.TempDir()
	small := []*Entry{{ID: "a", Status: StatusPending, MemoryBytes: 1 << 20}, {ID: "b", Status: StatusSkipped, MemoryBytes: 1 << 62}}
	if err := checkRoom(dir, small); err != nil {
		t.Errorf("1 MiB: %v", err)
	}
	huge := []*Entry{{ID: "a", Status: StatusPending, MemoryBytes: 1 << 60}}
	if err := checkRoom(dir, huge); err == nil || !strings.Contains(err.Error(), "the 1 containers need about") {
		t.Errorf("1 EiB: %v", err)
	}
}

func TestManifestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	m := &Manifest{Version: manifestVersion, Complete: true, Containers: []*Entry{{ID: "a", Status: StatusDumped}}}
	if err := writeManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	got, err := ReadManifest(dir)
	if err != nil || !got.Complete || len(got.Containers) != 1 || got.Containers[0].ID != "a" {
		t.Fatalf("read back %+v, %v", got, err)
	}
	os.WriteFile(filepath.Join(dir, ManifestFile), []byte(`{"version":99}`), 0o600)
	if _, err := ReadManifest(dir); err == nil || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("version 99: %v", err)
	}
	if _, err := ReadManifest(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not made by checkpoint --all") {
		t.Errorf("no manifest: %v", err)
	}
}

// each runs every item at most n at a time, and tally's events count
// them in order of ending.
func TestEachBoundAndTally(t *testing.T) {
	items := make([]int, 20)
	var mu sync.Mutex
	running, most := 0, 0
	var ends []int
	tl := &tally{total: len(items), progress: func(ev Event) {
		if !ev.Started {
			mu.Lock()
			ends = append(ends, ev.Done)
			mu.Unlock()
		}
	}}
	each(context.Background(), items, 3, func(int) {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		tl.start("x")
		time.Sleep(time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		tl.end("x", nil, time.Millisecond)
	})
	if most > 3 || most < 1 {
		t.Errorf("%d at a time, bound 3", most)
	}
	if len(ends) != 20 || tl.done != 20 {
		t.Errorf("%d end events, done %d", len(ends), tl.done)
	}
}

// The namespaces to lock are those the dumped containers joined by path,
// once each; lkc's own is the host's.
func TestJoinedNetns(t *testing.T) {
	dir := t.TempDir()
	cfg := map[string]string{
		"a": `{"linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/run/netns/x"}]}}`,
		"b": `{"linux":{"namespaces":[{"type":"network","path":"/run/netns/x"}]}}`,
		"c": `{"linux":{"namespaces":[{"type":"network"}]}}`,
		"d": `{"linux":{"namespaces":[{"type":"network","path":"/run/netns/y"}]}}`,
	}
	m := &Manifest{}
	for id, c := range cfg {
		os.Mkdir(filepath.Join(dir, id), 0o700)
		os.WriteFile(filepath.Join(dir, id, "config.json"), []byte(c), 0o600)
		st := StatusDumped
		if id == "d" {
			st = StatusFailed
		}
		m.Containers = append(m.Containers, &Entry{ID: id, Status: st})
	}
	if got := joinedNetns(m, dir); len(got) != 1 || got[0] != "/run/netns/x" {
		t.Errorf("joined %v, want [/run/netns/x]", got)
	}
	if !isHostNetns("/proc/self/ns/net") {
		t.Error("lkc's own namespace is not taken for the host's")
	}
}

// TestRestoreAllBadIDs: a manifest's ids name directories, so one that is
// not a container id (".." here, whose bundle directory would be the image
// directory's sibling) or that comes twice fails alone, before anything
// is made or removed for it.
func TestRestoreAllBadIDs(t *testing.T) {
	tmp := t.TempDir()
	images := filepath.Join(tmp, "images")
	victim := filepath.Join(tmp, "bundle", "keep")
	if err := os.MkdirAll(filepath.Dir(victim), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(victim, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(images, 0o700); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(tmp, "gone")
	m := &Manifest{Version: manifestVersion, Complete: true, Containers: []*Entry{
		{ID: "..", Status: StatusDumped, Bundle: gone, Rootfs: gone},
		{ID: "a", Status: StatusDumped, Bundle: gone, Rootfs: gone},
		{ID: "a", Status: StatusDumped, Bundle: gone, Rootfs: gone},
	}}
	if err := writeManifest(images, m); err != nil {
		t.Fatal(err)
	}
	res, err := RestoreAll(context.Background(), RestoreOpts{Root: filepath.Join(tmp, "root"), ImageDir: images})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Errorf("a file beside the image dir: %v", err)
	}
	want := []string{`invalid container id ".."`, "no such file or directory", `container a is in the manifest twice`}
	for i, r := range res {
		if r.Status != StatusNotRun || !strings.Contains(r.Error, want[i]) {
			t.Errorf("%d (%s): %s %q, want failed with %q", i, r.ID, r.Status, r.Error, want[i])
		}
	}
}

// TestRestoreAllExisting: restore --all run again while the containers it
// restored run (from DIR/<id>/bundle when their rootfs was saved) must
// fail for them without touching that bundle: it is their root
// filesystem.
func TestRestoreAllExisting(t *testing.T) {
	tmp := t.TempDir()
	images, root := filepath.Join(tmp, "images"), filepath.Join(tmp, "root")
	live := filepath.Join(images, "a", "bundle", "rootfs", "keep")
	for _, d := range []string{filepath.Dir(live), filepath.Join(root, "a")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(live, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(tmp, "gone")
	m := &Manifest{Version: manifestVersion, Complete: true, Containers: []*Entry{
		{ID: "a", Status: StatusDumped, Bundle: gone, Rootfs: gone, RootfsSaved: true},
	}}
	if err := writeManifest(images, m); err != nil {
		t.Fatal(err)
	}
	res, err := RestoreAll(context.Background(), RestoreOpts{Root: root, ImageDir: images})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the running container's rootfs: %v", err)
	}
	if len(res) != 1 || res[0].Status != StatusNotRun || !strings.Contains(res[0].Error, "container already exists: a") {
		t.Errorf("got %+v, want a failed with container already exists", res)
	}
}

// A container deleted between the listing of the root and its planning
// (a delete held it meanwhile) is skipped, as one deleted before its
// dump is, not failed.
func TestPlanDeletedSkipped(t *testing.T) {
	o := &CheckpointOpts{Root: t.TempDir()}
	if e := o.plan("gone"); e.Status != StatusSkipped || e.Error != "it was deleted before its dump began" {
		t.Errorf("plan of a deleted container: %+v", e)
	}
}

// At most n turns to freeze are out at a time, handed out in the order
// they were asked for; a wait ends with its context.
func TestTurns(t *testing.T) {
	turn := turns(2)
	var released []func()
	for range 2 {
		r, err := turn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		released = append(released, r)
	}
	got := make(chan int, 2)
	for i := range 2 {
		go func() {
			r, err := turn(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			got <- i
			r()
		}()
		time.Sleep(50 * time.Millisecond) // queued in order
	}
	select {
	case i := <-got:
		t.Fatalf("waiter %d got a third turn while two were out", i)
	case <-time.After(100 * time.Millisecond):
	}
	released[0]()
	if i := <-got; i != 0 {
		t.Fatalf("waiter %d got the freed turn first, want 0", i)
	}
	if i := <-got; i != 1 {
		t.Fatalf("then waiter %d, want 1", i)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errTestAbort)
	// Once ctx has ended, a turn is refused even when one is free.
	if _, err := turn(ctx); err != errTestAbort {
		t.Fatalf("turn after the context ended: %v, want %v", err, errTestAbort)
	}
	released[1]()
}

var errTestAbort = errors.New("aborted by the test")
