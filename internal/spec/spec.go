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

	"github.com/lkc-containers/lkc/internal/jsonc"
)

// ErrInvalid marks a config.json that lkc refuses.
var ErrInvalid = errors.New("invalid config.json")

// The decoder of the runtime-spec types lkc reads (decode_gen.go). The
// sections of other platforms are skipped unread, as Convert never reads
// them.
//go:generate go run ../../cmd/lkc-codegen -codec json -out decode_gen.go -skip Spec.Solaris,Spec.Windows,Spec.VM,Spec.ZOS github.com/opencontainers/runtime-spec/specs-go.Spec

// Parse decodes a config.json. Unknown fields are accepted, as the spec
// asks.
func Parse(r io.Reader) (*specs.Spec, error) {
	return parse(r, fieldsSpecsSpec)
}

// ParseProcess decodes a process.json (`lkc exec --process`): the
// "process" member of a config.json.
func ParseProcess(r io.Reader) (*specs.Process, error) {
	return parse(r, fieldsSpecsProcess)
}

// ParseResources decodes the linux.resources member of a config.json, as
// `lkc update --resources` takes it.
func ParseResources(r io.Reader) (*specs.LinuxResources, error) {
	return parse(r, fieldsSpecsLinuxResources)
}

// parse reads the first JSON value of r: encoding/json checks its syntax
// (into a json.RawMessage, which builds no per-type tables) and the
// generated field list of a T fills one from it (internal/jsonc says why not
// encoding/json).
func parse[T any](r io.Reader, fields func(*T) []jsonc.Field) (*T, error) {
	var raw json.RawMessage
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	v := new(T)
	if err := jsonc.DecodeChecked(raw, v, fields); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return v, nil
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
