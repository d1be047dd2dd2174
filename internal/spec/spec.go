// Package spec reads an OCI bundle's config.json, validates it and converts
// it into lkc's own config.Config. The OCI format stops here: nothing below
// the CLI sees specs.Spec. It also produces the defaults of `lkc spec`.
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

// Parse decodes a config.json. Unknown fields are accepted, as the spec asks.
func Parse(r io.Reader) (*specs.Spec, error) {
	var s specs.Spec
	dec := json.NewDecoder(r)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
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

func checkVersion(v string) error {
	if v == "" {
		return invalid("ociVersion is missing")
	}
	if !strings.HasPrefix(v, "1.") {
		return invalid("ociVersion %q is not a 1.x runtime-spec version", v)
	}
	return nil
}
