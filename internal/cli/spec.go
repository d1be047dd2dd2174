package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lkc-containers/lkc/internal/seccomp"
	"github.com/lkc-containers/lkc/internal/spec"
)

func specVersion() string { return spec.Version }

func cmdSpec(g *globals, args []string) error {
	var bundle string
	var rootless bool
	fs := newFlags("spec")
	fs.StringVar(&bundle, "bundle", ".", "directory to write config.json into")
	fs.StringVar(&bundle, "b", ".", "directory to write config.json into")
	fs.BoolVar(&rootless, "rootless", false, "a spec for a rootless container")
	if _, err := parse(fs, args, exactly(0), "lkc spec [--bundle dir]"); err != nil {
		return err
	}
	if rootless {
		return errors.New("spec --rootless is not supported: lkc runs containers as root")
	}
	path := filepath.Join(bundle, "config.json")
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists: remove it first", path)
	}
	data, err := json.MarshalIndent(spec.Default(), "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func cmdFeatures(g *globals, args []string) error {
	if _, err := parse(newFlags("features"), args, exactly(0), "lkc features"); err != nil {
		return err
	}
	f := spec.Features()
	f.Linux.Seccomp.SupportedFlags = seccomp.SupportedFlags()
	return printJSON(f)
}
