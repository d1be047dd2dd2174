package cr

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/lkc-containers/lkc/internal/config"
)

func TestACLWithUser(t *testing.T) {
	// 0640 with uid 100000 given r--: user::rw- user:100000:r--
	// group::r-- mask::r-- other::---.
	want := []byte{
		2, 0, 0, 0,
		0x01, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,
		0x02, 0, 4, 0, 0xa0, 0x86, 0x01, 0,
		0x04, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
		0x10, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
		0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
	}
	if got := aclWithUser(0o640, 100000, 4); !bytes.Equal(got, want) {
		t.Errorf("aclWithUser(0640, 100000, r) = %v; want %v", got, want)
	}
}

func TestReachable(t *testing.T) {
	dir := t.TempDir()
	closed := filepath.Join(dir, "closed")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	uid, gid := os.Getuid()+100000, os.Getgid()+100000
	if !reachable("/etc/passwd", uid, gid) {
		t.Error("/etc/passwd: unreachable to another uid")
	}
	if reachable(filepath.Join(closed, "file"), uid, gid) {
		t.Errorf("%s/file: reachable through a mode 0700 directory of another uid", closed)
	}
	if !reachable(filepath.Join(closed, "file"), os.Getuid(), gid) {
		t.Errorf("%s/file: unreachable to the owner of its mode 0700 directory", closed)
	}
}

func TestMappedRoot(t *testing.T) {
	cfg := &config.Config{
		Namespaces:  []config.Namespace{{Type: "user"}},
		UIDMappings: []config.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
		GIDMappings: []config.IDMap{{ContainerID: 0, HostID: 200000, Size: 65536}},
	}
	if uid, gid, ok, err := mappedRoot(cfg); uid != 100000 || gid != 200000 || !ok || err != nil {
		t.Errorf("mappedRoot = %d %d %v %v; want 100000 200000 true", uid, gid, ok, err)
	}
	cfg.UIDMappings[0].ContainerID = 1
	if _, _, _, err := mappedRoot(cfg); err == nil {
		t.Error("mappedRoot of maps without uid 0 succeeded")
	}
}

func TestGranterParent(t *testing.T) {
	dir := t.TempDir()
	final, pre := filepath.Join(dir, "final"), filepath.Join(dir, "pre")
	for _, d := range []string{final, pre} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// The test's own uid searches every directory: nothing is granted.
	g := &granter{uid: os.Getuid(), gid: os.Getgid(), done: map[string]bool{}}
	if got, err := g.parent(final); got != "" || err != nil {
		t.Errorf("parent of images without a link = %q, %v; want none", got, err)
	}
	for _, link := range []string{"../pre", "./../pre/", pre} {
		os.Remove(filepath.Join(final, parentLink))
		if err := os.Symlink(link, filepath.Join(final, parentLink)); err != nil {
			t.Fatal(err)
		}
		if got, err := g.parent(final); got != pre || err != nil {
			t.Errorf("parent through link %q = %q, %v; want %s", link, got, err, pre)
		}
	}
	if len(g.done) != 0 {
		t.Errorf("granted %v to a uid that may search them all", g.done)
	}
}
