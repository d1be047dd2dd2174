// Package state keeps a container's record on disk under <root>/<id>: the
// state file written atomically, the lock that serializes commands on one
// id, the pid+start-time identity that tells whether init still lives, and
// what a corrupt state file still holds (Salvage).
package state

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/jsonc"
)

// Error classes, checked with errors.Is.
var (
	ErrNotExist = errors.New("container does not exist")
	ErrExist    = errors.New("container already exists")
	ErrBadID    = errors.New("invalid container id")
	// ErrBusy is TryOpen's answer while another command holds the lock.
	ErrBusy = errors.New("container is busy")
	// ErrCorrupt marks a state file that cannot be decoded (a disk that
	// filled up, a crash of the filesystem); Salvage reads what it can.
	ErrCorrupt = errors.New("corrupt state")
)

const stateFile = "state.json"

// FifoName is the exec fifo init waits on until `start`.
const FifoName = "exec.fifo"

// validID reports whether id is letters, digits, '_', '+', '-' and '.'
// (the regexp ^[\w+.-]+$, written out: compiling a regexp in every lkc
// process, `lkc init` included, cost 0.03 ms of each start).
func validID(id string) bool {
	for _, c := range []byte(id) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '+', c == '.', c == '-':
		default:
			return false
		}
	}
	return id != ""
}

// State is what lkc records about a container, in the state file as
// json.Marshal would write it. The file is written and read by the codec
// generated from this type and config.Config (state_gen.go, internal/jsonc
// says why not encoding/json); encode_test.go holds it to encoding/json.
//
//go:generate go run ../../cmd/lkc-codegen -codec json -out state_gen.go State
type State struct {
	ID        string    `json:"id"`
	Bundle    string    `json:"bundle"`
	Rootfs    string    `json:"rootfs"`
	Created   time.Time `json:"created"`
	Owner     string    `json:"owner"`
	InitPid   int       `json:"initPid,omitempty"`
	InitStart uint64    `json:"initStart,omitempty"`
	// CgroupPaths maps each cgroup hierarchy's controller name to the
	// directory lkc created for the container ("" for the v2 hierarchy).
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
	// CgroupParents are the directories above CgroupPaths lkc created for
	// the container; delete removes each that is empty by then.
	CgroupParents []string `json:"cgroupParents,omitempty"`
	// RootfsMount is the id of the bind mount of the rootfs that holds the
	// container's mounts when it shares its caller's mount namespace (see
	// mount.BindRootfs); delete detaches it.
	RootfsMount uint64 `json:"rootfsMount,omitempty"`
	// OwnedBundle says lkc made Bundle (a migrated container's, made by
	// `lkc serve`), so deleting the container removes it too.
	OwnedBundle bool `json:"ownedBundle,omitempty"`
	// Stdio identifies the files lkc handed the container's tasks as fds
	// 0-2, each "mnt:ino" in hex ("" for one that was closed); none when
	// init opened its own (a terminal).
	Stdio []string `json:"stdio,omitempty"`
	// Carried is what the container ran and used before the checkpoint
	// it was restored from; nil for one created here. Its virtual /proc
	// continues from it rather than from the restore (procfs).
	Carried *Carried       `json:"carried,omitempty"`
	Config  *config.Config `json:"config"`
}

// Carried is a container's past as its virtual /proc showed it at a
// checkpoint, summed over every checkpoint and restore it came through.
type Carried struct {
	// RanNanos is how long it had run: the time it was checkpointed and
	// not restored yet does not count, as its clocks (a time namespace's,
	// which CRIU restores) do not count it either.
	RanNanos int64 `json:"ranNanos"`
	// UserNanos and SystemNanos are the CPU time it had used, per CPU of
	// its view (/proc/stat's cpuN lines) in order.
	UserNanos   []uint64 `json:"userNanos"`
	SystemNanos []uint64 `json:"systemNanos"`
	// LastPid and Processes are its view's loadavg last pid and stat's
	// processes at the checkpoint (the daemon's pid book, procfs.PidCount),
	// and PidsFrom when the restore had brought its threads back (clock
	// ticks after the host's boot): those threads, all older, are no new
	// forks to the view. Zero when the view had no count.
	LastPid   int    `json:"lastPid,omitempty"`
	Processes uint64 `json:"processes,omitempty"`
	PidsFrom  uint64 `json:"pidsFrom,omitempty"`
}

// Dir is a container's locked state directory.
type Dir struct {
	path  string
	f     *os.File
	saved []byte // the state Save wrote last
}

// CheckID refuses ids that could not name a directory safely.
func CheckID(id string) error {
	if !validID(id) || id == "." || id == ".." {
		return fmt.Errorf("%w %q: use letters, digits, '_', '+', '-' and '.'", ErrBadID, id)
	}
	return nil
}

// Create makes and locks the directory of a new container. The directory
// itself is the claim on the id: a second create of the same id fails.
func Create(root, id string) (*Dir, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("creating state root: %w", err)
	}
	path := filepath.Join(root, id)
	if err := os.Mkdir(path, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%w: %s", ErrExist, id)
		}
		return nil, fmt.Errorf("creating state dir: %w", err)
	}
	d, err := lock(path, unix.LOCK_EX)
	if errors.Is(err, os.ErrNotExist) {
		// A delete of the same id removed the directory between the mkdir
		// and the lock; the name may already belong to a newer create.
		return nil, fmt.Errorf("container %s was deleted while being created", id)
	}
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(path, creatingMark), nil, 0o600); err != nil {
		d.Remove() // closes d too
		return nil, fmt.Errorf("marking container %s as being created: %w", id, err)
	}
	return d, nil
}

// Open locks the directory of an existing container; shared for readers.
func Open(root, id string, exclusive bool) (*Dir, error) {
	return open(root, id, exclusive, 0)
}

// TryOpen is Open that does not wait: it fails with ErrBusy while another
// command holds the lock (a create running its hooks holds it for as long
// as they run).
func TryOpen(root, id string, exclusive bool) (*Dir, error) {
	return open(root, id, exclusive, unix.LOCK_NB)
}

// Peek opens the directory of an existing container without locking it,
// for a reader that must not wait for the lock's holder. The state file is
// only ever replaced whole, so Load reads a whole one, old or new.
func Peek(root, id string) (*Dir, error) {
	return open(root, id, false, -1)
}

// FilePath is the state file of container id under root, for a reader
// that watches it change (it is only ever replaced whole).
func FilePath(root, id string) string { return filepath.Join(root, id, stateFile) }

// open locks the directory with flags added to the lock operation; -1
// opens it without a lock.
func open(root, id string, exclusive bool, flags int) (*Dir, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if flags >= 0 {
		how |= flags
	} else {
		how = 0
	}
	d, err := lock(filepath.Join(root, id), how)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotExist, id)
	}
	if errors.Is(err, unix.EWOULDBLOCK) {
		return nil, fmt.Errorf("%w: %s: another lkc command holds it", ErrBusy, id)
	}
	return d, err
}

// lock opens path and locks it with flock operation how (none if 0).
func lock(path string, how int) (*Dir, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	for how != 0 {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Nlink == 0 {
		f.Close() // removed by a delete we waited for
		return nil, os.ErrNotExist
	}
	return &Dir{path: path, f: f}, nil
}

// creatingMark is the file a create (or restore) keeps in the directory
// until the container is complete. With the lock held it tells a container
// being created from a created one that another command holds (a start
// waiting for the exec, say).
const creatingMark = "creating"

// Created tells other commands that the container is complete.
func (d *Dir) Created() error {
	if err := os.Remove(filepath.Join(d.path, creatingMark)); err != nil {
		return fmt.Errorf("marking container %s as created: %w", filepath.Base(d.path), err)
	}
	return nil
}

// Creating reports whether the container's create has not finished: while
// its lock is held, a create or restore is under way.
func (d *Dir) Creating() bool {
	_, err := os.Lstat(filepath.Join(d.path, creatingMark))
	return err == nil
}

// deletedMark is the file a delete --force leaves in the directory of a
// container another command holds, before it kills its processes.
const deletedMark = "deleted"

// MarkDeleted tells the command holding the container (a create, most
// often) that its failure to come is a delete's doing.
func (d *Dir) MarkDeleted() error {
	return os.WriteFile(filepath.Join(d.path, deletedMark), nil, 0o600)
}

// Deleted reports whether a delete --force marked the container.
func (d *Dir) Deleted() bool {
	_, err := os.Lstat(filepath.Join(d.path, deletedMark))
	return err == nil
}

// dumpingMark is the file a checkpoint keeps in the directory of the
// container it holds from the freeze until CRIU is done with the tasks,
// or, when the checkpoint then removes the container, until it is gone.
const dumpingMark = "dumping"

// MarkDumping tells a delete --force that a checkpoint holds the
// container: killing tasks that CRIU has frozen and seized can leave a
// SIGKILL pending that no task acts on and CRIU waiting for them for
// good, so that delete waits for the lock instead. The returned function
// removes the mark. Preconditions: d is locked exclusively.
func (d *Dir) MarkDumping() (func(), error) {
	p := filepath.Join(d.path, dumpingMark)
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		return nil, fmt.Errorf("marking the container as being checkpointed: %w", err)
	}
	return func() { os.Remove(p) }, nil
}

// Dumping reports whether a checkpoint marked the container (MarkDumping).
func (d *Dir) Dumping() bool {
	_, err := os.Lstat(filepath.Join(d.path, dumpingMark))
	return err == nil
}

// Path is the directory's path, for files kept beside the state.
func (d *Dir) Path() string { return d.path }

// Close releases the lock.
func (d *Dir) Close() error { return d.f.Close() }

// Relock takes the lock of d again after Close, shared or exclusive as in
// Open, for a command that let go of it while it waited (a foreground
// run). It fails with ErrNotExist when the container was deleted meanwhile.
func (d *Dir) Relock(exclusive bool) error {
	n, err := Open(filepath.Dir(d.path), filepath.Base(d.path), exclusive)
	if err != nil {
		return err
	}
	d.f = n.f
	return nil
}

// Unchanged reports whether the recorded state is still, byte for byte,
// the one d saved last: then the caller's copy is the record, and it need
// not Load it again (decoding it cost a run 0.1 ms at its end).
func (d *Dir) Unchanged() bool {
	data, err := os.ReadFile(filepath.Join(d.path, stateFile))
	return err == nil && d.saved != nil && bytes.Equal(data, d.saved)
}

// Save writes s atomically: a reader sees the old or the new state, never
// half of one. A state already recorded is swapped with the new one
// (RENAME_EXCHANGE) and then removed, not renamed over: ext4 starts
// writing a file renamed over another to disk at once (auto_da_alloc),
// which made the rename 0.1-0.2 ms slower and the unlink of the state at
// delete wait 0.2 ms for that write (docs/kernel.md). A crash between the
// two steps leaves the old state in the temporary file, which the next
// Save overwrites and Remove removes.
func (d *Dir) Save(s *State) error {
	data, err := jsonc.Encode(s, fieldsState)
	if err != nil {
		return fmt.Errorf("encoding state: %w", err)
	}
	tmp, path := filepath.Join(d.path, ".state.tmp"), filepath.Join(d.path, stateFile)
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, path, unix.RENAME_EXCHANGE); err == nil {
		d.saved = data
		_ = os.Remove(tmp) // the old state; left behind, it is as harmless as after a crash
		return nil
	}
	// No state yet (ENOENT), or a filesystem that cannot exchange.
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	d.saved = data
	return nil
}

// Load reads the state. A directory without one belongs to a create that
// died before writing it: ErrNotExist, and Remove clears it.
func (d *Dir) Load() (*State, error) {
	data, err := os.ReadFile(filepath.Join(d.path, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (no state recorded)", ErrNotExist, filepath.Base(d.path))
	}
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	var s State
	if err := jsonc.Decode(data, &s, fieldsState); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrCorrupt, filepath.Join(d.path, stateFile), err)
	}
	return &s, nil
}

// Remove deletes the directory and everything in it, then unlocks it.
func (d *Dir) Remove() error {
	err := os.RemoveAll(d.path)
	d.f.Close()
	if err != nil {
		return fmt.Errorf("removing state dir: %w", err)
	}
	return nil
}

// List returns the ids under root.
func List(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", root, err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && validID(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}
