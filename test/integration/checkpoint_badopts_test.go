package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
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
