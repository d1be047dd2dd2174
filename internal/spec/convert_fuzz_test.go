package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/pack"
)

// FuzzConvert feeds arbitrary config.json bytes through everything `create`
// does before it touches the kernel: Parse, Convert, and the init message
// that carries the result to `lkc init`. A config is either refused with one
// line that wraps ErrInvalid, or converted into a config that the init
// message carries without loss. The committed corpus is in
// testdata/fuzz/FuzzConvert; scripts/test.sh runs this target for a fixed
// budget.
func FuzzConvert(f *testing.F) {
	bundle := f.TempDir()
	if err := os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
		f.Fatal(err)
	}
	for _, in := range cases {
		f.Add([]byte(in))
	}
	def, _ := json.Marshal(Default())
	f.Add(def)
	full, _ := json.Marshal(fullSpec())
	f.Add(full)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(bytes.NewReader(data))
		if err != nil {
			checkRefusal(t, err)
			return
		}
		c, err := Convert(s, "fuzz", bundle)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		checkCarried(t, c)
	})
}

// checkRefusal asserts what the CLI relies on to print one clear line.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("refusal %q does not wrap ErrInvalid", err)
	}
	if strings.ContainsAny(err.Error(), "\n\r") {
		t.Fatalf("refusal spans several lines: %q", err)
	}
}

// checkCarried asserts that the init message gives `lkc init` the config the
// parent converted: unpacked and packed again, it encodes to the same bytes.
func checkCarried(t *testing.T, c *config.Config) {
	t.Helper()
	var w pack.Writer
	pack.Write(&w, config.PackFieldsConfig(c))
	var got config.Config
	r := pack.NewReader(w.Bytes())
	pack.Read(r, config.PackFieldsConfig(&got))
	if r.Err() != nil {
		t.Fatalf("unpacking a packed config: %v", r.Err())
	}
	var again pack.Writer
	pack.Write(&again, config.PackFieldsConfig(&got))
	if !bytes.Equal(w.Bytes(), again.Bytes()) {
		t.Fatalf("the init message changed the config: %+v became %+v", c, got)
	}
}
