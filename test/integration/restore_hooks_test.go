package integration

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestRestoreRunsRuntimeHooks: a restore runs the config's prestart and
// createRuntime hooks, as runc's does (hooks that set up devices or the
// network are needed by the restored container as much), with the
// restored init's pid, once its namespaces exist; no other create or
// start hook runs. A failing hook fails the restore in one line and
// leaves nothing behind but what the poststop hooks, which follow, as
// runc runs them, record; the images restore after it.
func TestRestoreRunsRuntimeHooks(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	dir := t.TempDir()
	hooks := &specs.Hooks{
		Prestart:      []specs.Hook{recordingHook("prestart", dir)},
		CreateRuntime: []specs.Hook{recordingHook("createRuntime", dir)},
		Poststart:     []specs.Hook{recordingHook("poststart", dir)},
	}
	id, root := e.ckptCounter(func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.test": "restore-hooks"}
		s.Hooks = hooks
	})
	bundle := bundleOf(e, id)
	images := filepath.Join(t.TempDir(), "images")
	saved := e.checkpointStops(id, root, images)
	for _, f := range []string{"order", "prestart.json", "createRuntime.json", "poststart.json"} {
		os.Remove(filepath.Join(dir, f))
	}

	failDir := t.TempDir()
	failing := e.bundle([]string{"sh", "-c", counterScript}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = root, false
		s.Hooks = &specs.Hooks{
			CreateRuntime: []specs.Hook{shHook("echo boom >&2; exit 3")},
			Poststop:      []specs.Hook{recordingHook("poststop", failDir)},
		}
	})
	id2 := e.id()
	e.failLkc(`restor.*createRuntime hook #0 /bin/sh: exit status 3: boom`,
		"restore", "-d", "--bundle", failing, "--image-path", images, id2)
	if r := e.lkc("state", id2); r.code == 0 {
		t.Fatalf("a restore whose hook failed left container %s: %v", id2, r)
	}
	if dirs := cgroupDirs(id2); len(dirs) > 0 {
		t.Fatalf("a restore whose hook failed left cgroups %v", dirs)
	}
	if st := hookState(t, failDir, "poststop"); st["status"] != "stopped" || st["id"] != id2 {
		t.Errorf("poststop hook after the failed restore read %v", st)
	}

	e.restoreDetached(id, bundle, root, images, saved)
	if got := readTrim(t, filepath.Join(dir, "order")); got != "prestart\ncreateRuntime" {
		t.Errorf("hooks run by the restore: %q, want prestart then createRuntime", got)
	}
	pid := float64(initPid(e, id))
	for _, point := range []string{"prestart", "createRuntime"} {
		st := hookState(t, dir, point)
		if st["id"] != id || st["status"] != "creating" || st["pid"] != pid || st["bundle"] != bundle {
			t.Errorf("%s hook on restore read %v, want id %s, status creating, pid %v, bundle %s", point, st, id, pid, bundle)
		}
		if ann, _ := st["annotations"].(map[string]any); ann["org.test"] != "restore-hooks" {
			t.Errorf("%s hook on restore read annotations %v", point, st["annotations"])
		}
	}
	e.mustLkc("delete", "-f", id)
}

// TestRestoreFailureRunsPoststop: a restore that fails once it claimed the
// container's id, before any create-time hook ran (a missing image
// directory, CRIU failing on an empty one), leaves nothing behind and runs
// the poststop hooks once, with the state of a stopped container, as
// runc's restore, which destroys the container it failed to restore, runs
// them. One that fails before it claims the id (the id is taken) runs
// none: runc's fails before it has a container.
func TestRestoreFailureRunsPoststop(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	dir := t.TempDir()
	bundle := e.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{
			CreateRuntime: []specs.Hook{recordingHook("createRuntime", dir)},
			Poststop:      []specs.Hook{recordingHook("poststop", dir)},
		}
	})
	for _, c := range []struct{ name, images, want string }{
		{"missing image dir", filepath.Join(t.TempDir(), "none"), `restoring container .*: opening checkpoint directory: open .*/none: no such file or directory`},
		{"criu fails", t.TempDir(), `restoring container .*: criu: `},
	} {
		t.Run(c.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, "order"))
			os.Remove(filepath.Join(dir, "poststop.json"))
			id := e.id()
			e.failLkc(c.want, "restore", "-d", "--bundle", bundle, "--image-path", c.images, id)
			assertFailedRanPoststop(t, e, "restore", id, bundle, dir)
		})
	}

	t.Run("id taken", func(t *testing.T) {
		os.Remove(filepath.Join(dir, "order"))
		id := e.id()
		e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "1000"}, nil), id)
		e.failLkc(`exists`, "restore", "-d", "--bundle", bundle, "--image-path", t.TempDir(), id)
		if got := readTrim(t, filepath.Join(dir, "order")); got != "" {
			t.Errorf("hooks run by a restore refused before it claimed the id: %q, want none", got)
		}
		e.mustLkc("delete", "-f", id)
	})
}
