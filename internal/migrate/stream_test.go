package migrate

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// makeTree builds a tree with every kind of entry the stream carries.
func makeTree(t *testing.T, root bool) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "etc", "deep"), 0o755))
	must(os.WriteFile(filepath.Join(src, "etc", "passwd"), []byte("root:x:0:0\n"), 0o644))
	big := bytes.Repeat([]byte("0123456789abcdef"), 200000) // several frames
	must(os.WriteFile(filepath.Join(src, "big"), big, 0o600))
	must(os.WriteFile(filepath.Join(src, "empty"), nil, 0o640))
	must(os.Link(filepath.Join(src, "big"), filepath.Join(src, "etc", "big-link")))
	must(os.Symlink("../etc/passwd", filepath.Join(src, "etc", "deep", "sym")))
	must(os.Chmod(filepath.Join(src, "etc", "deep"), 0o1750))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o620))
	must(unix.Setxattr(filepath.Join(src, "empty"), "user.lkc", []byte("v"), 0))
	if root {
		must(unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(os.Lchown(filepath.Join(src, "etc", "passwd"), 123, 456))
		must(os.Chmod(filepath.Join(src, "big"), 0o4755))
	}
	return src
}

func TestTreeRoundTrip(t *testing.T) {
	src := makeTree(t, os.Geteuid() == 0)
	ca, cb, errA, errB := pair(t, testToken, testToken)
	if errA != nil || errB != nil {
		t.Fatalf("handshake: %v %v", errA, errB)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	done := make(chan error, 1)
	go func() { done <- ca.sendTree(src, func(int64) {}) }()
	end, err := cb.recvTree(dst, nil)
	if err != nil {
		t.Fatalf("recvTree: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("sendTree: %v", err)
	}
	if end.Bytes != int64(len("root:x:0:0\n"))+3200000 {
		t.Errorf("bytes %d: the hard link must be sent once", end.Bytes)
	}
	compareTrees(t, src, dst)
}

// compareTrees checks type, mode, owner, size, mtime, link targets,
// device numbers, hard links and xattrs of every file.
func compareTrees(t *testing.T, a, b string) {
	t.Helper()
	filepath.Walk(a, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(a, p)
		q := filepath.Join(b, rel)
		var sa, sb unix.Stat_t
		if err := unix.Lstat(p, &sa); err != nil {
			t.Fatal(err)
		}
		if err := unix.Lstat(q, &sb); err != nil {
			t.Errorf("%s missing: %v", rel, err)
			return nil
		}
		if sa.Mode != sb.Mode || sa.Uid != sb.Uid || sa.Gid != sb.Gid || sa.Rdev != sb.Rdev || sa.Nlink != sb.Nlink {
			t.Errorf("%s: mode %o/%o uid %d/%d gid %d/%d rdev %d/%d nlink %d/%d", rel, sa.Mode, sb.Mode, sa.Uid, sb.Uid, sa.Gid, sb.Gid, sa.Rdev, sb.Rdev, sa.Nlink, sb.Nlink)
		}
		if sa.Mode&unix.S_IFMT != unix.S_IFLNK && sa.Mtim != sb.Mtim {
			t.Errorf("%s: mtime %v, want %v", rel, sb.Mtim, sa.Mtim)
		}
		if sa.Mode&unix.S_IFMT == unix.S_IFREG {
			da, _ := os.ReadFile(p)
			db, _ := os.ReadFile(q)
			if !bytes.Equal(da, db) {
				t.Errorf("%s: content differs", rel)
			}
		}
		la, _ := os.Readlink(p)
		lb, _ := os.Readlink(q)
		if la != lb {
			t.Errorf("%s: link %q, want %q", rel, lb, la)
		}
		xa, _ := readXattrs(p)
		xb, _ := readXattrs(q)
		if len(xa) != len(xb) || string(xa["user.lkc"]) != string(xb["user.lkc"]) {
			t.Errorf("%s: xattrs %v, want %v", rel, xb, xa)
		}
		return nil
	})
}

// A stream may not write outside its root, whatever the sender sends.
// The symlink case points at a directory of the test's own ("<outside>"),
// which must stay empty.
func TestTreeRefusesEscapes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []entry
	}{
		{"dotdot", []entry{{Path: ".", Type: "dir"}, {Path: "../x", Type: "file"}}},
		{"absolute", []entry{{Path: ".", Type: "dir"}, {Path: "/etc/x", Type: "file"}}},
		{"through symlink", []entry{{Path: ".", Type: "dir"}, {Path: "l", Type: "symlink", Link: "<outside>"}, {Path: "l/x", Type: "file"}}},
		{"hardlink out", []entry{{Path: ".", Type: "dir"}, {Path: "h", Type: "hardlink", Link: "../../etc/passwd"}}},
		{"unclean", []entry{{Path: ".", Type: "dir"}, {Path: "a/../b", Type: "file"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outside := t.TempDir()
			ca, cb, errA, errB := pair(t, testToken, testToken)
			if errA != nil || errB != nil {
				t.Fatalf("handshake: %v %v", errA, errB)
			}
			go func() {
				for i := range tc.entries {
					e := tc.entries[i]
					if e.Link == "<outside>" {
						e.Link = outside
					}
					// Owned by whoever runs the test: without root, a
					// chown to another would fail before the check.
					e.Mode, e.UID, e.GID = 0o755, os.Getuid(), os.Getgid()
					ca.sendEntry(&e)
				}
				ca.flush()
			}()
			dst := filepath.Join(t.TempDir(), "dst")
			_, err := cb.recvTree(dst, nil)
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("recvTree: %v, want a protocol error", err)
			}
			if names, _ := os.ReadDir(outside); len(names) != 0 {
				t.Fatalf("the stream wrote through a symlink: %s holds %s", outside, names[0].Name())
			}
		})
	}
}
