package clients

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
	"github.com/lkc-containers/lkc/internal/testutil"
)

// cmdTimeout bounds every client command: a hung client fails its case
// instead of the whole suite.
const cmdTimeout = 60 * time.Second

// result is one command's outcome.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("%s: exit %d, stdout %q, stderr %q", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// command runs name with args and env added to this process's, stdin from
// /dev/null. Output goes to files, not pipes: a detached container or a
// daemon the command starts may inherit them and hold a pipe open forever.
// A command that does not finish within cmdTimeout fails the test.
func command(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	r, err := runCommand(t, env, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryCommand is command for cleanups, which must go on: a command that
// times out or cannot start is reported and comes back with code -1.
func tryCommand(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	r, err := runCommand(t, env, name, args...)
	if err != nil {
		t.Error(err)
		r.code = -1
	}
	return r
}

func runCommand(t *testing.T, env []string, name string, args ...string) (result, error) {
	t.Helper()
	return runWithInput(t, env, nil, name, args...)
}

// runWithInput is runCommand with stdin read from input (nil: /dev/null).
func runWithInput(t *testing.T, env []string, input io.Reader, name string, args ...string) (result, error) {
	t.Helper()
	r := result{args: append([]string{name}, args...)}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = input
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		return r, err
	}
	defer out.Close()
	errf, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		return r, err
	}
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = out, errf
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	r.stdout, r.stderr = readFile(out.Name()), readFile(errf.Name())
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return r, fmt.Errorf("%s: timed out after %v; stderr %q", strings.Join(r.args, " "), cmdTimeout, r.stderr)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		return r, fmt.Errorf("running %s: %v", strings.Join(r.args, " "), err)
	}
	return r, nil
}

func readFile(p string) string {
	data, _ := os.ReadFile(p)
	return string(data)
}

// ownCgroups returns this process's cgroup path in each hierarchy, keyed
// by the hierarchy's directory under /sys/fs/cgroup ("" on a pure v2 host).
func ownCgroups(t *testing.T) map[string]string {
	t.Helper()
	own, err := readOwnCgroups()
	if err != nil {
		t.Fatal(err)
	}
	return own
}

// readOwnCgroups maps each mounted hierarchy (its directory under
// /sys/fs/cgroup) to this process's cgroup in it.
func readOwnCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	own := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		dir := strings.TrimPrefix(parts[1], "name=")
		if dir == "" && isCgroup2("/sys/fs/cgroup/unified") {
			dir = "unified" // the v2 hierarchy of a hybrid host
		}
		if dir == "" && !isCgroup2("/sys/fs/cgroup") {
			continue
		}
		own[dir] = parts[2]
	}
	return own, sc.Err()
}

func isCgroup2(path string) bool {
	v2, _ := cgroupfs.IsV2(path)
	return v2
}

// cgroupParent returns a fresh cgroup path beneath this process's memory
// cgroup (the only controller this process is not at the root of) for a
// client's containers. At the end it removes what the clients and runtimes
// created for it, failing the test if a cgroup still holds processes.
// runc places the path from each hierarchy's root; lkc places it beneath
// the calling shim's or conmon's own cgroup, which for the shim is this
// process's: both places are cleaned, with any directory above them that
// did not exist before.
func cgroupParent(t *testing.T, name string) string {
	t.Helper()
	own := ownCgroups(t)
	base := own["memory"]
	if base == "" {
		base = own[""] // cgroup v2
	}
	parent := filepath.Join(base, fmt.Sprintf("lkc-clients-%d-%s", os.Getpid(), name))
	var trees []string
	for ctrl, ownPath := range own {
		hier := filepath.Join("/sys/fs/cgroup", ctrl)
		trees = append(trees, filepath.Join(hier, parent), filepath.Join(hier, ownPath, parent))
	}
	t.Cleanup(func() {
		for _, tree := range trees {
			testutil.RemoveCgroupTree(t, tree)
		}
	})
	return parent
}

// limitedCgroupParent is cgroupParent made beforehand in the memory
// hierarchy with a 32 MiB limit, as a pod's cgroup is.
func limitedCgroupParent(t *testing.T, name string) string {
	t.Helper()
	parent := cgroupParent(t, name)
	dir, file := filepath.Join("/sys/fs/cgroup/memory", parent), "memory.limit_in_bytes"
	if isCgroup2("/sys/fs/cgroup") {
		dir, file = filepath.Join("/sys/fs/cgroup", parent), "memory.max"
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte("33554432"), 0); err != nil {
		t.Skipf("no memory limit on a cgroup beneath the test's own: %v", err)
	}
	return parent
}

// cgroupsEmpty reports whether no process is in path, or beneath it, in
// any hierarchy.
func cgroupsEmpty(path string) bool {
	trees, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", path))
	if isCgroup2("/sys/fs/cgroup") {
		trees = []string{filepath.Join("/sys/fs/cgroup", path)}
	}
	empty := true
	for _, tree := range trees {
		filepath.WalkDir(tree, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Name() == "cgroup.procs" && strings.TrimSpace(readFile(p)) != "" {
				empty = false
			}
			return nil
		})
	}
	return empty
}

// checkNoState fails if an OCI runtime root still holds a container.
func checkNoState(t *testing.T, root string) {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil && !os.IsNotExist(err) {
		t.Errorf("reading runtime root %s: %v", root, err)
	}
	for _, e := range entries {
		t.Errorf("runtime root %s still holds %s after cleanup", root, e.Name())
	}
}

// waitFor polls cond every 50 ms until it holds or the timeout passes; a
// client's asynchronous work (conmon, the shim) has no event to wait on.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}

// checkCgroupPlacement logs the linux.cgroupsPath a client gave the
// runtime (from the bundle's config.json) and fails unless it lies beneath
// parent, inside this test's own cgroup, and the container's init is in
// exactly that cgroup in each hierarchy: runc and lkc both take an
// absolute path from the hierarchy root.
func checkCgroupPlacement(t *testing.T, rt ociRuntime, root, id, parent string) {
	t.Helper()
	st := ociState(t, rt, root, id)
	data, err := os.ReadFile(filepath.Join(st.Bundle, "config.json"))
	if err != nil {
		t.Errorf("reading the config.json of %s: %v", id, err)
		return
	}
	var cfg struct {
		Linux struct{ CgroupsPath string } `json:"linux"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("config.json of %s: %v", id, err)
	}
	path := cfg.Linux.CgroupsPath
	t.Logf("%s: linux.cgroupsPath of %s is %q", rt.name, id, path)
	if !strings.HasPrefix(path, parent+"/") {
		t.Errorf("%s: linux.cgroupsPath %q of %s is not beneath the test's cgroup parent %s", rt.name, path, id, parent)
	}
	for _, line := range strings.Split(readFile(fmt.Sprintf("/proc/%d/cgroup", st.Pid)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && (parts[1] == "memory" || parts[1] == "pids" || (parts[1] == "" && isCgroup2("/sys/fs/cgroup"))) && parts[2] != path {
			t.Errorf("%s: init of %s is in %s cgroup %s, want %s", rt.name, id, parts[1], parts[2], path)
		}
	}
}

// parentAncestors lists, in every hierarchy, the directories above the
// tests' cgroup parents: the path of the own memory cgroup (the parents'
// base) taken from the hierarchy's root and from the own cgroup in it. A
// runtime that places a container at an absolute path beneath it makes
// those that are missing (runc does, in every hierarchy, the named systemd
// and hybrid v2 ones too).
func parentAncestors() []string {
	own, err := readOwnCgroups()
	if err != nil {
		return nil
	}
	base := own["memory"]
	if base == "" {
		base = own[""]
	}
	var out []string
	for ctrl, ownPath := range own {
		hier := filepath.Join("/sys/fs/cgroup", ctrl)
		for _, p := range []string{filepath.Join(hier, base), filepath.Join(hier, ownPath, base)} {
			for d := p; strings.HasPrefix(d, hier+"/"); d = filepath.Dir(d) {
				out = append(out, d)
			}
		}
	}
	return out
}

// missingAncestors are those of parentAncestors that do not exist yet.
func missingAncestors() []string {
	var out []string
	for _, d := range parentAncestors() {
		if _, err := os.Stat(d); err != nil {
			out = append(out, d)
		}
	}
	return out
}

// removeEmpty removes the directories the suite's runtimes made above its
// cgroup parents, deepest first; one that is not empty stays.
func removeEmpty(dirs []string) {
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		os.Remove(d)
	}
}
