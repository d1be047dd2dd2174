// Package spec reads an OCI bundle's config.json, validates it and converts
// it into lkc's own config.Config. The OCI format stops here: below the CLI
// only internal/container's restore, which reads the bundle it is given,
// calls it; nothing else sees specs.Spec. It also produces the defaults of
// `lkc spec` and the answer of `lkc features`.
package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrInvalid marks a config.json that lkc refuses.
var ErrInvalid = errors.New("invalid config.json")

// Parse decodes a config.json. Unknown fields are accepted, as the spec
// asks. encoding/json reads the first JSON value and checks its syntax;
// decode.go fills the spec from it, without encoding/json's reflection.
func Parse(r io.Reader) (*specs.Spec, error) {
	var raw json.RawMessage
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var s specs.Spec
	d := decoder{data: raw}
	d.spec(&s)
	if d.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, d.err)
	}
	return &s, nil
}

// LoadBundle reads and parses <bundle>/config.json.
func LoadBundle(bundle string) (*specs.Spec, error) {
	f, err := os.Open(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("reading bundle config: %w", err)
	}
	defer f.Close()
	s, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return s, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// checkVersion refuses a config written for another major version of the
// runtime spec. A config without ociVersion is taken as it is, as runc
// does: Docker and hand-written bundles leave it out.
func checkVersion(v string) error {
	if v != "" && !strings.HasPrefix(v, "1.") {
		return invalid("ociVersion %q is not a 1.x runtime-spec version", v)
	}
	return nil
}
