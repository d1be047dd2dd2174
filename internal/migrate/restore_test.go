package migrate

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Only the fds the dump named as files outside the container get a
// replacement, read-only for fd 0 and for appending otherwise: the
// receiver's /dev/null, or a file it creates in the bundle with the
// source's mode and size. No request makes it open a path of the sender's
// choosing.
func TestOpenStdio(t *testing.T) {
	images, bundle := t.TempDir(), t.TempDir()
	err := os.WriteFile(filepath.Join(images, "descriptors.json"), []byte(`["file[1a:3]","pipe:[7]","file[1a:3]"]`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	null, log := stdioFile{Kind: stdioNull}, stdioFile{Kind: stdioFileKind, Mode: 0o640, Size: 12345}
	files, err := openStdio([3]stdioFile{null, null, log}, images, bundle)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFiles(files[:])
	if files[0] == nil || files[1] != nil || files[2] == nil {
		t.Fatalf("made %v, want fds 0 and 2 only", files)
	}
	if _, err := files[0].Write([]byte("x")); err == nil {
		t.Error("fd 0 was opened writable")
	}
	if _, err := files[2].Write([]byte("x")); err != nil {
		t.Errorf("fd 2: %v", err)
	}
	fi, err := os.Stat(filepath.Join(bundle, "stdio-2"))
	if err != nil || fi.Mode() != 0o640 || fi.Size() != 12345+1 {
		t.Fatalf("fd 2's file: %v %v, want mode 0640 and the source's size", fi, err)
	}
	for _, bad := range []stdioFile{{Kind: "fifo"}, {Kind: stdioFileKind, Size: -1}, {Kind: stdioFileKind, Mode: 0o4755}, {Kind: "/etc/shadow"}} {
		if _, err := openStdio([3]stdioFile{bad}, images, t.TempDir()); !errors.Is(err, ErrProtocol) {
			t.Errorf("%+v: %v, want a protocol error", bad, err)
		}
	}
	if files, err := openStdio([3]stdioFile{null}, t.TempDir(), bundle); err != nil || files[0] != nil {
		t.Fatalf("without a stdio record: %v %v, want nothing made", files, err)
	}
	// A sender naming host paths, as the protocol once let it.
	var req restoreReq
	if err := json.Unmarshal([]byte(`{"image":"final","stdio":["/etc/shadow","/run/fifo",""]}`), &req); err == nil {
		t.Fatalf("a restore request naming stdio paths decoded: %+v", req)
	}
}
