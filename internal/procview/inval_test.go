package procview

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lkc-containers/lkc/internal/fuse"
)

// TestReadInval: a kept session's record gives its successor the mode its
// INIT chose; no record is a session of a build that asked
// FUSE_AUTO_INVAL_DATA; an empty or unknown record is unknown.
func TestReadInval(t *testing.T) {
	if m := readInval(nil); m != fuse.InvalAuto {
		t.Errorf("no record: %d, want InvalAuto", m)
	}
	for content, want := range map[string]fuse.Inval{
		"":                                       fuse.InvalUnknown,
		string([]byte{9}):                        fuse.InvalUnknown,
		string([]byte{byte(fuse.InvalUnknown)}):  fuse.InvalUnknown,
		string([]byte{byte(fuse.InvalExplicit)}): fuse.InvalExplicit,
		string([]byte{byte(fuse.InvalAuto)}):     fuse.InvalAuto,
	} {
		p := filepath.Join(t.TempDir(), "rec")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := readInval(f); m != want {
			t.Errorf("record %q: %d, want %d", content, m, want)
		}
		f.Close()
	}
}
