package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ociRuntime is a runc-compatible command-line runtime with its own state
// directory (--root).
type ociRuntime struct {
	name string
	bin  string // absolute path or a name looked up in PATH
	root string
	env  []string // added to the benchmark's environment ("": none)
}

// prepare resolves the binary, creates the state directory and returns the
// runtime's version line for the report.
func (r *ociRuntime) prepare() (string, error) {
	path, err := exec.LookPath(r.bin)
	if err != nil {
		return "", fmt.Errorf("%s binary: %w", r.name, err)
	}
	r.bin = path
	if err := os.MkdirAll(r.root, 0o700); err != nil {
		return "", fmt.Errorf("%s state directory: %w", r.name, err)
	}
	return r.version() + " (" + path + ")", nil
}

// version returns the first line of "<bin> --version", or "version unknown".
func (r *ociRuntime) version() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, r.bin, "--version").Output()
	line, _, _ := strings.Cut(string(out), "\n")
	if err != nil || line == "" {
		return "version unknown"
	}
	return line
}

func (r *ociRuntime) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, r.bin, append([]string{"--root", r.root}, args...)...)
	if len(r.env) > 0 {
		cmd.Env = append(os.Environ(), r.env...)
	}
	return cmd
}

// hasState reports whether id still has a state directory ("run" removes it
// on success for runc and crun).
func (r *ociRuntime) hasState(id string) bool {
	_, err := os.Lstat(filepath.Join(r.root, id))
	return err == nil
}

// forceDelete removes container id if it still exists; "run" normally
// deletes it already, so errors (typically "does not exist") are ignored.
func (r *ociRuntime) forceDelete(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = r.command(ctx, "delete", "-f", id).Run()
}

// deleteAll force-deletes every container in the state directory whose id
// starts with prefix.
func (r *ociRuntime) deleteAll(prefix string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := r.command(ctx, "list", "-q").Output()
	if err != nil {
		return fmt.Errorf("%s list: %w", r.name, err)
	}
	for _, id := range strings.Fields(string(out)) {
		if strings.HasPrefix(id, prefix) {
			r.forceDelete(id)
		}
	}
	return nil
}
