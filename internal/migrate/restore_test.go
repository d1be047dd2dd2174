package migrate

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Only the fds the dump named as files outside the container are reopened,
// read-only for fd 0 and for appending otherwise; a relative path is a
// protocol error.
func TestOpenStdio(t *testing.T) {
	images := t.TempDir()
	err := os.WriteFile(filepath.Join(images, "descriptors.json"), []byte(`["file[1a:3]","pipe:[7]","file[1a:3]"]`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	files, err := openStdio([3]string{"/dev/null", "/dev/null", "/dev/null"}, images)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFiles(files[:])
	if files[0] == nil || files[1] != nil || files[2] == nil {
		t.Fatalf("reopened %v, want fds 0 and 2 only", files)
	}
	if _, err := files[0].Write([]byte("x")); err == nil {
		t.Error("fd 0 was reopened writable")
	}
	if _, err := files[2].Write([]byte("x")); err != nil {
		t.Errorf("fd 2: %v", err)
	}
	if _, err := openStdio([3]string{"dev/null"}, images); !errors.Is(err, ErrProtocol) {
		t.Fatalf("relative stdio path: %v, want a protocol error", err)
	}
	if files, err := openStdio([3]string{"/dev/null"}, t.TempDir()); err != nil || files[0] != nil {
		t.Fatalf("without a stdio record: %v %v, want nothing reopened", files, err)
	}
}
