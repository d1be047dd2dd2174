// Package cgroups places containers into cgroups and applies their limits,
// over cgroup v1 and v2 behind one interface. As in runc, an absolute path
// is taken from the root of each hierarchy (so Kubernetes' pod cgroups and
// Podman's --cgroup-parent hold the container) and a relative one from the
// cgroup of the calling lkc process; only directories lkc created are ever
// removed.
package cgroups

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
	"github.com/lkc-containers/lkc/internal/config"
)

// ErrNotSupported marks a controller or setting the host lacks.
var ErrNotSupported = errors.New("not supported by this host's cgroups")

// Host describes where the cgroup filesystems are; tests point it at a
// temporary directory.
type Host struct {
	Root       string // usually /sys/fs/cgroup
	SelfCgroup string // usually /proc/self/cgroup
}

// DefaultHost is the real machine.
var DefaultHost = Host{Root: "/sys/fs/cgroup", SelfCgroup: "/proc/self/cgroup"}

// Manager is one container's cgroup.
type Manager interface {
	// Paths maps controller name to directory ("" names the v2 directory).
	Paths() map[string]string
	// Create makes the directories, remembering which ones it made.
	Create() error
	Set(r *config.Resources) error
	// Placement says how a new process enters the cgroup cheaply: on v1 it
	// writes "0" to each of tasksFiles itself (a move by pid waits for an RCU
	// grace period); on v2 the parent clones it into cloneInto.
	Placement() (tasksFiles []string, cloneInto string)
	Procs() ([]int, error)
	Freeze() error
	Thaw() error
	Frozen() (bool, error)
	// FreezerFile is the file Frozen reads ("" without a freezer): frozen
	// when it holds FROZEN or FREEZING (v1) or 1 (v2).
	FreezerFile() string
	// Stats reads usage counters, in runc's `events --stats` shape.
	Stats() (*Stats, error)
	// Usage reads the subset of Stats that `lkc stats`, `lkc top` and
	// /metrics show (CPU total, memory usage, limit, memory.stat and OOM
	// kills, pids, block I/O bytes), a third of the files: those commands
	// read every container each second.
	Usage() (*Stats, error)
	// OOMEvents sends a value each time the kernel OOM-kills in the cgroup,
	// until ctx ends or the cgroup is removed; then it closes the channel.
	OOMEvents(ctx context.Context) (<-chan struct{}, error)
	// Parents lists the directories above the container's cgroup that
	// Create made for it, so a later Destroy (of a manager FromPaths
	// rebuilds from the state) can remove them again.
	Parents() []string
	// Destroy removes the container's cgroup, then each of Parents that is
	// empty: one another container still uses stays. The cgroup must be
	// empty.
	Destroy() error
	// plan lists the writes Set makes for r, in order, without writing.
	plan(r *config.Resources) ([]write, error)
}

// New returns the manager of the cgroup at path on h: an absolute path
// from the root of each hierarchy, a relative one from the caller's own
// cgroup in it.
func New(h Host, path string) (Manager, error) {
	v2, err := cgroupfs.IsV2(h.Root)
	if err != nil {
		return nil, fmt.Errorf("cgroup root %s: %w", h.Root, err)
	}
	own, err := readSelf(h.SelfCgroup)
	if err != nil {
		return nil, err
	}
	if v2 {
		return newV2(h, own[""], path), nil
	}
	return newV1(h, own, path)
}

// under places path in a hierarchy mounted at mnt where the caller's own
// cgroup is own.
func under(mnt, own, path string) string {
	if filepath.IsAbs(path) {
		return filepath.Join(mnt, path)
	}
	return filepath.Join(mnt, own, path)
}

// FromPaths returns the manager of an existing cgroup recorded in state,
// with the parent directories its Create made (Manager.Parents).
func FromPaths(paths map[string]string, parents []string) Manager {
	if p, ok := cgroupfs.V2Dir(paths); ok {
		return &v2{dir: p, parents: parents}
	}
	return &v1{dirs: paths, parents: parents}
}

// readSelf parses /proc/self/cgroup into controller list -> path; the v2
// entry ("0::/path") has the key "".
func readSelf(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("reading own cgroup: %w", err)
	}
	defer f.Close()
	own := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) == 3 {
			own[parts[1]] = parts[2]
		}
	}
	return own, sc.Err()
}

// Enter moves process pid, single-threaded, into m's cgroup, the costly
// way Placement avoids (a move by pid waits for an RCU grace period), for
// the caller that must know when the process is in: one that freezes
// there (a frozen cgroup freezes a task moved in) says nothing more until
// it is thawed.
func Enter(m Manager, pid int) error {
	files, dir := m.Placement()
	if dir != "" {
		files = append(slices.Clip(files), filepath.Join(dir, "cgroup.procs"))
	}
	for _, f := range files {
		if err := writeFile(filepath.Dir(f), filepath.Base(f), strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// ToOwnFreezer moves the processes pids into the caller's own v1 freezer
// cgroup, out of a container's where they were started (Placement), so
// that freezing the container leaves them running. Each move by pid waits
// for an RCU grace period. Nothing to do on v2 (a cgroup's processes all
// belong to the container there) or without a freezer.
func ToOwnFreezer(h Host, pids []int) error {
	m, err := New(h, "")
	if err != nil {
		return err
	}
	own, ok := m.(*v1)
	if !ok {
		return nil
	}
	dir, ok := own.dir("freezer")
	if !ok {
		return nil
	}
	for _, pid := range pids {
		if err := writeFile(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(dir, file, value string) error {
	p := filepath.Join(dir, file)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", p, err)
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %q to %s: %w", value, p, err)
	}
	return nil
}

func readFile(dir, file string) (string, error) {
	data, err := cgroupfs.ReadFile(filepath.Join(dir, file))
	return strings.TrimSpace(string(data)), err
}

// readProcs lists the processes in dir and in every cgroup below it: exec
// --cgroup and the container itself may make sub-cgroups.
func readProcs(dir string) ([]int, error) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil {
			pids = append(pids, pid)
		}
	}
	subs, err := subCgroups(dir)
	for _, sub := range subs {
		more, err := readProcs(sub)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		pids = append(pids, more...)
	}
	return pids, err
}

func subCgroups(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var subs []string
	for _, e := range entries {
		if e.IsDir() {
			subs = append(subs, filepath.Join(dir, e.Name()))
		}
	}
	return subs, err
}

// mkdirTracked creates dir and missing parents below base, returning the
// directories it created, deepest last. A parent that vanishes meanwhile
// (another container's delete removing the parent it made) is made again.
func mkdirTracked(base, dir string) ([]string, error) {
	rel, err := filepath.Rel(base, dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		return nil, fmt.Errorf("cgroup %s is outside %s", dir, base)
	}
	var made []string
	for attempt := 0; ; attempt++ {
		more, err := mkdirOnce(base, rel)
		made = append(made, more...)
		if !errors.Is(err, os.ErrNotExist) || attempt == 3 {
			return made, err
		}
	}
}

func mkdirOnce(base, rel string) ([]string, error) {
	var made []string
	cur := base
	for _, part := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, part)
		err := os.Mkdir(cur, 0o755)
		if err == nil {
			made = append(made, cur)
			continue
		}
		if !errors.Is(err, os.ErrExist) {
			return made, fmt.Errorf("creating cgroup: %w", err)
		}
	}
	if len(made) == 0 || made[len(made)-1] != cur {
		return made, fmt.Errorf("creating cgroup %s: %w", cur, os.ErrExist)
	}
	return made, nil
}

// splitMade separates the container's cgroup (made last, when made) from
// the parents made for it.
func splitMade(made []string, dir string) (leaf, parents []string) {
	if n := len(made); n > 0 && made[n-1] == dir {
		return made[n-1:], made[:n-1]
	}
	return nil, made
}

// removeTree removes a container's cgroup directory and the sub-cgroups
// made in it (by exec --cgroup users or the container itself), deepest
// first. Most have none, so the directory is only listed when removing
// it fails: the listings cost 0.1-0.15 ms per container on v1 (seven
// hierarchies), at the end of every run.
func removeTree(dir string) error {
	if err := unix.Rmdir(dir); err == nil || err == unix.ENOENT {
		return nil
	}
	subs, err := subCgroups(dir)
	if err != nil {
		return fmt.Errorf("listing sub-cgroups of %s: %w", dir, err)
	}
	for _, sub := range subs {
		if err := removeTree(sub); err != nil {
			return err
		}
	}
	return rmdir(dir)
}

// rmdir removes a cgroup directory, retrying while the kernel still counts
// exiting tasks in it.
func rmdir(dir string) error {
	delay := time.Millisecond
	for i := 0; ; i++ {
		err := unix.Rmdir(dir)
		if err == nil || err == unix.ENOENT {
			return nil
		}
		if err != unix.EBUSY || i == 12 {
			return fmt.Errorf("removing cgroup %s: %w", dir, err)
		}
		time.Sleep(delay)
		delay *= 2
	}
}

// rmdirMade removes the container cgroups a failed Create made. Their
// parents may hold other containers: no recursion here.
func rmdirMade(made []string) error {
	var first error
	for _, dir := range made {
		if err := rmdir(dir); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// removeParents removes the parent directories lkc made for a container,
// deepest first, each only while empty: rmdir refuses, atomically, one
// that another container created a cgroup in meanwhile, and that one stays
// (to be left, as runc leaves every parent). No retries: busy is final.
func removeParents(parents []string) error {
	sorted := slices.Clone(parents)
	slices.SortFunc(sorted, func(a, b string) int { return len(b) - len(a) })
	var first error
	for _, dir := range sorted {
		err := unix.Rmdir(dir)
		if err == nil || err == unix.ENOENT || err == unix.EBUSY || err == unix.ENOTEMPTY {
			continue
		}
		if first == nil {
			first = fmt.Errorf("removing parent cgroup %s: %w", dir, err)
		}
	}
	return first
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// KillAll SIGKILLs every process in the cgroup and waits until it is empty.
// A frozen cgroup is thawed so the kill can land.
func KillAll(m Manager) error {
	var last []int
	err := waitFor("killing every process", func() (bool, error) {
		pids, err := m.Procs()
		if errors.Is(err, os.ErrNotExist) || (err == nil && len(pids) == 0) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("listing container processes: %w", err)
		}
		last = pids
		for _, pid := range pids {
			unix.Kill(pid, unix.SIGKILL)
		}
		if frozen, _ := m.Frozen(); frozen {
			return false, m.Thaw()
		}
		return false, nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("container processes %v: %w", last, err)
	}
	return err
}

// waitFor polls done with a growing pause until it reports true, for changes
// the kernel makes asynchronously (freezing, processes dying); it gives up
// after 10 s.
func waitFor(what string, done func() (bool, error)) error {
	deadline := time.Now().Add(10 * time.Second)
	delay := 100 * time.Microsecond
	for {
		ok, err := done()
		if ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not complete in 10s", what)
		}
		time.Sleep(delay)
		if delay < 10*time.Millisecond {
			delay *= 2
		}
	}
}

// Flat reports whether none of the cgroups in paths (controller to
// directory, as Manager.Paths gives them) has a child cgroup.
func Flat(paths map[string]string) bool {
	for _, dir := range paths {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return false
		}
		for _, e := range entries {
			if e.IsDir() {
				return false
			}
		}
	}
	return true
}
