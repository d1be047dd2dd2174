package network

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"golang.org/x/sys/unix"
)

// pluginLockName, in the state directory, is locked (shared) by every
// plugin lkc runs for the container, for as long as the plugin or a
// process it started lives: the lock is on an fd the plugin inherits.
const pluginLockName = "cni.lock"

// pluginWait bounds how long a delete waits for plugins a dead lkc left
// running.
const pluginWait = 30 * time.Second

// newCNI is libcni's runner for the container in stateDir, with its cache
// in cacheDir and the plugins run by pluginExec.
func newCNI(stateDir, cacheDir string) *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir(PluginPath(), cacheDir, &pluginExec{lock: filepath.Join(stateDir, pluginLockName)})
}

// pluginExec runs CNI plugins as libcni's default does, but each holds
// the container's plugin lock. A plugin outlives the lkc that runs it
// when that lkc is killed (a create or restore killed during ADD), and
// goes on adding rules while the delete that follows runs DEL: DEL then
// fails on them (portmap: "CHAIN_DEL failed (Device or resource busy)")
// or, done first, leaves what the ADD adds after it. waitPlugins, before
// DEL, waits for them through the lock.
type pluginExec struct {
	version.PluginDecoder
	lock string // "": none (the collector's DEL of a container whose state directory is gone)
}

func (*pluginExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

// ExecPlugin runs the plugin with stdin and environ and returns its
// stdout, or its error (the CNI error it printed, else its stderr).
func (e *pluginExec) ExecPlugin(ctx context.Context, path string, stdin []byte, environ []string) ([]byte, error) {
	var extra []*os.File
	if e.lock != "" {
		lock, err := os.OpenFile(e.lock, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("opening the plugin lock: %w", err)
		}
		defer lock.Close()
		if err := flock(lock, unix.LOCK_SH); err != nil {
			return nil, err
		}
		extra = []*os.File{lock}
	}
	var err error
	var stdout, stderr bytes.Buffer
	for try := 0; try < 5; try++ {
		stdout.Reset()
		stderr.Reset()
		cmd := exec.CommandContext(ctx, path)
		cmd.Env, cmd.Stdin, cmd.Stdout, cmd.Stderr = environ, bytes.NewReader(stdin), &stdout, &stderr
		cmd.ExtraFiles = extra
		// ETXTBSY: the plugin is being installed; libcni waits too.
		if err = cmd.Run(); !errors.Is(err, syscall.ETXTBSY) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if err != nil {
		return nil, pluginError(err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// pluginError is the error of a plugin that failed: the CNI error it
// printed on stdout, or its stderr.
func pluginError(err error, stdout, stderr []byte) error {
	if len(stdout) > 0 {
		var e types.Error
		if jerr := json.Unmarshal(stdout, &e); jerr == nil {
			return &e
		}
		return &types.Error{Msg: fmt.Sprintf("plugin failed (%v), printing %q", err, stdout)}
	}
	if msg := strings.TrimSpace(string(stderr)); msg != "" {
		return &types.Error{Msg: fmt.Sprintf("plugin failed (%v): %q", err, msg)}
	}
	return &types.Error{Msg: fmt.Sprintf("plugin failed with no message: %v", err)}
}

// waitPlugins waits, up to pluginWait, until no plugin run for the
// container in stateDir is left (a dead lkc's), so that DEL does not
// race with its ADD. A plugin hung past that is not waited for longer.
func waitPlugins(stateDir string) {
	f, err := os.Open(filepath.Join(stateDir, pluginLockName))
	if err != nil {
		return // no plugin ever ran
	}
	defer f.Close()
	for deadline := time.Now().Add(pluginWait); ; time.Sleep(20 * time.Millisecond) {
		err := flock(f, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			flock(f, unix.LOCK_UN)
			return
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			return
		}
	}
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "flock", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
