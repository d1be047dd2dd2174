package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/lkc-containers/lkc/internal/lsm"
)

// TestCheckpointBadOptions: option values CRIU cannot take are refused in
// one line before the container is touched: the image and work
// directories a checkpoint or a restore would make are not left behind,
// and the container keeps running.
func TestCheckpointBadOptions(t *testing.T) {
	criu := requireCriu(t)
	e := newEnv(t)
	id, root := e.ckptCounter(nil)
	dir := t.TempDir()
	images, work := filepath.Join(dir, "images"), filepath.Join(dir, "work")
	for _, c := range []struct{ want, flag, value string }{
		{`--manage-cgroups-mode "bogus"`, "--manage-cgroups-mode", "bogus"},
		{`empty-ns.*"bogus"`, "--empty-ns", "bogus"},
		{`page server "nonsense"`, "--page-server", "nonsense"},
		{`page server "127.0.0.1:0"`, "--page-server", "127.0.0.1:0"},
	} {
		e.failLkc(c.want, "--criu", criu, "checkpoint", c.flag, c.value, "--image-path", images, "--work-path", work, id)
		e.failLkc(c.want, "--criu", criu, "restore", "-d", "--bundle", bundleOf(e, id), c.flag, c.value, "--image-path", dir, "--work-path", work, "new-"+id)
		for _, p := range []string{images, work} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Fatalf("%s %s: %s left behind (%v)", c.flag, c.value, p, err)
			}
		}
	}
	if st := e.state(id); st["status"] != "running" {
		t.Fatalf("container is %v after the refused checkpoints", st["status"])
	}
	waitCount(t, root, readCount(t, root)+2)
	e.mustLkc("delete", "-f", id)
}

// TestRestoreMissingImages: a restore from an image path that does not
// exist is refused in one line naming it, and makes neither that path
// (the default work path) nor a separate work path, nor the container.
func TestRestoreMissingImages(t *testing.T) {
	criu := requireCriu(t)
	e := newEnv(t)
	dir := t.TempDir()
	images, work := filepath.Join(dir, "nosuch"), filepath.Join(dir, "work")
	bundle := e.bundle([]string{"true"}, nil)
	for _, extra := range [][]string{nil, {"--work-path", work}} {
		id := e.id()
		args := append([]string{"--criu", criu, "restore", "-d", "--bundle", bundle, "--image-path", images}, extra...)
		e.failLkc(`restor.*`+regexp.QuoteMeta(images)+`: no such file or directory`, append(args, id)...)
		for _, p := range []string{images, work} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Fatalf("restore %v: %s left behind (%v)", extra, p, err)
			}
		}
		if r := e.lkc("state", id); r.code == 0 {
			t.Fatalf("a refused restore left container %s: %v", id, r)
		}
	}
}

// TestRestoreBadLSMOptions: an --lsm-profile or --lsm-mount-context CRIU
// cannot take (not apparmor:NAME or selinux:LABEL, not an SELinux
// context) or the host has no module for is refused in one line naming
// the flag, before anything is made: no container, cgroup or work
// directory, although the images would restore.
func TestRestoreBadLSMOptions(t *testing.T) {
	criu := requireCriu(t)
	e := newEnv(t)
	id, _ := e.ckptCounter(nil)
	bundle := bundleOf(e, id)
	images := filepath.Join(t.TempDir(), "images")
	e.mustLkc("--criu", criu, "checkpoint", "--leave-running", "--image-path", images, id)
	cases := []struct{ want, flag, value string }{
		{`--lsm-profile "lkc-default": want apparmor:PROFILE or selinux:LABEL`, "--lsm-profile", "lkc-default"},
		{`--lsm-profile "apparmor:"`, "--lsm-profile", "apparmor:"},
		{`--lsm-profile "selinux:container_t": .*not an SELinux label`, "--lsm-profile", "selinux:container_t"},
		{`--lsm-mount-context "container_file_t": not an SELinux context`, "--lsm-mount-context", "container_file_t"},
		{`--lsm-mount-context .*not an SELinux context`, "--lsm-mount-context", `u:r:t:s0",rw`},
	}
	if !lsm.Default.AppArmor() {
		cases = append(cases, struct{ want, flag, value string }{
			`--lsm-profile "apparmor:lkc-x": AppArmor is not enabled on this host`, "--lsm-profile", "apparmor:lkc-x"})
	}
	if !lsm.Default.SELinux() {
		cases = append(cases, struct{ want, flag, value string }{
			`--lsm-mount-context "u:r:t:s0": SELinux is not enabled on this host`, "--lsm-mount-context", "u:r:t:s0"})
	}
	for _, c := range cases {
		work, nid := filepath.Join(t.TempDir(), "work"), e.id()
		e.failLkc(`^lkc: restore: .*`+c.want, "--criu", criu, "restore", "-d", "--bundle", bundle,
			c.flag, c.value, "--image-path", images, "--work-path", work, nid)
		if _, err := os.Stat(work); !os.IsNotExist(err) {
			t.Errorf("%s %s: %s left behind (%v)", c.flag, c.value, work, err)
		}
		if r := e.lkc("state", nid); r.code == 0 {
			t.Errorf("%s %s: a refused restore left container %s: %v", c.flag, c.value, nid, r)
		}
		if dirs := cgroupDirs(nid); len(dirs) > 0 {
			t.Errorf("%s %s: cgroups left behind: %v", c.flag, c.value, dirs)
		}
	}
	e.mustLkc("delete", "-f", id)
}

// TestCheckpointBadParentPath: a --parent-path that names no directory
// (relative to the image path, or absolute) is refused in one line naming
// it, as runc refuses it, and so is a dump on top of a pre-dump where the
// kernel tracks no dirty memory; neither makes the image directory, and the
// container keeps running.
func TestCheckpointBadParentPath(t *testing.T) {
	criu := requireCriu(t)
	e := newEnv(t)
	id, root := e.ckptCounter(nil)
	dir := t.TempDir()
	images := filepath.Join(dir, "images")
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ want, parent string }{
		{`--parent-path: stat ` + regexp.QuoteMeta(filepath.Join(dir, "nosuch")) + `: no such file or directory`, "../nosuch"},
		{`--parent-path: stat ` + regexp.QuoteMeta(filepath.Join(dir, "gone")) + `: no such file or directory`, filepath.Join(dir, "gone")},
		{`--parent-path: stat ` + regexp.QuoteMeta(file) + `: not a directory`, "../file"},
	} {
		e.failLkc(c.want, "--criu", criu, "checkpoint", "--parent-path", c.parent, "--image-path", images, id)
	}
	if !softDirty(t, criu) {
		e.failLkc(`--parent-path: not supported on this host: the kernel does not track dirty memory`,
			"--criu", criu, "checkpoint", "--parent-path", "..", "--image-path", images, id)
	}
	if _, err := os.Stat(images); !os.IsNotExist(err) {
		t.Fatalf("refused checkpoints left %s behind (%v)", images, err)
	}
	if st := e.state(id); st["status"] != "running" {
		t.Fatalf("container is %v after the refused checkpoints", st["status"])
	}
	waitCount(t, root, readCount(t, root)+2)
	e.mustLkc("delete", "-f", id)
}
