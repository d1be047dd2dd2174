package evacuate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/container"
	"github.com/lkc-containers/lkc/internal/cr"
	"github.com/lkc-containers/lkc/internal/effective"
)

// CheckpointOpts are the options of `lkc checkpoint --all`.
type CheckpointOpts struct {
	Root     string
	ImageDir string // made if missing (its parent must exist); must be empty
	Parallel int    // dumps at a time; < 1 is 1
	// Stop kills and deletes the containers that could not be dumped
	// (before a reboot that would end them anyway); without it they keep
	// running.
	Stop bool
	// SaveRootfs saves every rootfs with the images, not only those on
	// memory-backed storage (volatile).
	SaveRootfs bool
	// Dump is what every container's dump is told (TCPEstablished,
	// LeaveRunning, ...); its Root, ID and paths are set per container.
	Dump cr.CheckpointOpts
	// Progress, when not nil, hears of each container as its dump starts
	// and ends.
	Progress func(Event)
	Warn     func(error) // nil drops warnings
}

// Event is one container's step in an operation on many.
type Event struct {
	ID          string
	Done, Total int     // containers finished so far, of Total
	Started     bool    // the container's operation begins (else it ended)
	Err         error   // why it failed (ended only)
	Skipped     bool    // it had nothing to do: Err says why (ended only)
	MS          float64 // how long it took (ended only)
}

// CheckpointAll dumps every running (or paused) container of o.Root into
// o.ImageDir/<id>, at most o.Parallel at a time, and writes the manifest.
// It refuses to start, leaving nothing behind, when the directory is
// unusable or its filesystem cannot hold the estimate (memory in use and
// rootfs copies, a tenth more). A container whose dump fails is recorded
// with the reason; the returned manifest lists every container. Once stop
// ends (a first signal), no more dumps start: those under way finish, and
// the rest are recorded as not dumped, and o.Stop stops none. Once abort
// ends (a second), each dump under way stops where CRIU can without harm
// (cr.CheckpointOpts.Abort), unless it is past that point: its container
// is left as it was, its directory removed, and it is recorded as not
// dumped.
func CheckpointAll(stop, abort context.Context, o CheckpointOpts) (*Manifest, error) {
	if o.Warn == nil {
		o.Warn = func(error) {}
	}
	ids, err := listRoot(o.Root)
	if err != nil {
		return nil, err
	}
	m := &Manifest{Version: manifestVersion, Root: o.Root, Kernel: kernelRelease(), Created: time.Now().UTC(),
		TCPEstablished: o.Dump.TCPEstablished}
	for _, id := range ids {
		if stop.Err() != nil {
			return nil, o.interrupted()
		}
		m.Containers = append(m.Containers, o.plan(id))
	}
	undo, unlock, err := makeImageDir(o.ImageDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := checkRoom(o.ImageDir, m.Containers); err != nil {
		undo()
		return nil, err
	}
	if err := startManifest(o.ImageDir, m); err != nil {
		undo()
		return nil, err
	}
	if v, _ := volatile(o.ImageDir); v && !o.Dump.LeaveRunning {
		o.Warn(fmt.Errorf("image dir %s is on memory-backed storage (tmpfs or ramfs): a reboot empties it, and the containers it holds are stopped", o.ImageDir))
	}
	if !o.dumpAll(stop, abort, m) {
		undo()
		return nil, o.interrupted()
	}
	m.Complete = true
	// The reserve's room is the last writing's.
	os.Remove(filepath.Join(o.ImageDir, reserveFile))
	return m, writeManifest(o.ImageDir, m)
}

// interrupted is why a checkpoint --all that a signal ended before any
// dump began wrote nothing: a manifest of containers none of which was
// dumped would give restore --all nothing to bring back, and would keep
// the next checkpoint --all out of the directory, which must be empty.
func (o *CheckpointOpts) interrupted() error {
	return fmt.Errorf("interrupted (a signal) before any dump began: nothing was dumped, every container runs as before, and image dir %s is left as it was", o.ImageDir)
}

// startManifest writes the first manifest, every container pending, and
// reserves the room of the last one.
func startManifest(dir string, m *Manifest) error {
	data, err := marshalManifest(m)
	if err == nil {
		err = reserveRoom(dir, data, len(m.Containers))
	}
	if err == nil {
		err = writeManifest(dir, m)
	}
	return err
}

// listRoot lists the ids of o.Root's containers; a root that does not
// exist is an error here, where `lkc list` shows it empty.
func listRoot(root string) ([]string, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("root %s: %w", root, errors.Unwrap(err))
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("root %s: not a directory", root)
	}
	states, err := container.List(root, func(error) {})
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(states))
	for _, s := range states {
		ids = append(ids, s.ID)
	}
	return ids, nil
}

// plan reads what container id is and what its dump will write; one that
// cannot be dumped comes back failed or skipped, with the reason.
func (o *CheckpointOpts) plan(id string) *Entry {
	e := &Entry{ID: id, Status: StatusPending}
	h, err := container.Inspect(o.Root, id)
	if why := goneReason(err, "dump"); why != "" {
		// Deleted since the listing (a delete held it meanwhile):
		// skipped, as one deleted before its dump is.
		e.Status, e.Error = StatusSkipped, why
		return e
	}
	if err != nil {
		e.Status, e.Error = StatusFailed, err.Error()
		return e
	}
	if st := h.Status(); st != container.Running && st != container.Paused {
		e.Status, e.Error = StatusSkipped, "it is "+st
		return e
	}
	e.Bundle, e.Rootfs, e.Terminal = h.Bundle(), h.Rootfs(), h.Config().Process.Terminal
	e.Paused = h.Status() == container.Paused
	e.Annotations = h.LiveAnnotations()
	e.MemoryBytes = h.DumpBytes()
	if e.Resources, err = json.Marshal(h.Config().Cgroup.Resources); err != nil {
		e.Status, e.Error = StatusFailed, fmt.Sprintf("encoding its limits: %v", err)
		return e
	}
	e.RootfsSaved = o.SaveRootfs
	e.RootfsOverlay = overlayRoot(e.Rootfs)
	if !e.RootfsSaved {
		if e.RootfsSaved, err = volatile(e.Rootfs); err != nil {
			e.Status, e.Error = StatusFailed, err.Error()
		}
	}
	if id == ManifestFile || id == ManifestFile+".tmp" || id == reserveFile {
		e.Status, e.Error = StatusFailed, "its id is the manifest's file name"
	}
	return e
}

// makeImageDir makes dir (its parent must exist) or checks that it is
// empty, and locks it; it returns what removes what it made, and what
// unlocks it.
func makeImageDir(dir string) (undo, unlock func(), err error) {
	err = os.Mkdir(dir, 0o700)
	made := err == nil
	if err != nil && !errors.Is(err, os.ErrExist) {
		return nil, nil, fmt.Errorf("image dir %s: %w", dir, errors.Unwrap(err))
	}
	// Locked before it is read: a checkpoint that made it and holds it
	// has not written there yet. One that lost it to another, between
	// its making and its locking, leaves it to that one.
	if unlock, err = lockImageDir(dir); err != nil {
		return nil, nil, err
	}
	if made {
		return func() { os.RemoveAll(dir) }, unlock, nil
	}
	entries, err := os.ReadDir(dir)
	if err == nil && len(entries) > 0 {
		err = fmt.Errorf("image dir %s is not empty (%s): checkpoint --all writes into an empty one", dir, entries[0].Name())
	} else if err != nil {
		err = fmt.Errorf("image dir %s: %w", dir, errors.Unwrap(err))
	}
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return func() {
		for _, f := range []string{ManifestFile, ManifestFile + ".tmp", reserveFile} {
			os.Remove(filepath.Join(dir, f))
		}
	}, unlock, nil
}

// checkRoom refuses a directory whose filesystem cannot hold the dumps:
// the memory the containers use now (CRIU writes about that much) and the
// rootfs copies, a tenth more and 1 MiB a container (logs, records). On a
// tmpfs or ramfs, what is written takes memory: the room is then also
// bounded by the memory lkc (whose children CRIU and tar write) may still
// take, the host's and its cgroup's, which such a filesystem's size does
// not bound.
func checkRoom(dir string, entries []*Entry) error {
	var mem, rootfs, n int64
	for _, e := range entries {
		if e.Status != StatusPending {
			continue
		}
		n++
		mem += e.MemoryBytes
		if e.RootfsSaved {
			size, err := treeBytes(e.Rootfs)
			if err != nil {
				return err
			}
			rootfs += size
		}
	}
	need := mem + rootfs
	need += need/10 + n<<20
	space, err := effective.DirSpace("/", dir, os.Getpid())
	if err != nil {
		return err
	}
	if space.Free < uint64(need) {
		return fmt.Errorf("image dir %s has %s, the %d containers need about %d MiB (memory %d MiB, rootfs copies %d MiB, and a margin)",
			dir, space, n, (need+1<<20-1)>>20, mem>>20, rootfs>>20)
	}
	return nil
}

// dumpAll dumps the planned containers, updating their entries. It
// returns false, having changed nothing, when stop ended before any dump
// began.
func (o *CheckpointOpts) dumpAll(stop, abort context.Context, m *Manifest) bool {
	var todo, failed []*Entry
	for _, e := range m.Containers {
		switch e.Status {
		case StatusPending:
			todo = append(todo, e)
		case StatusFailed:
			failed = append(failed, e)
		}
	}
	t := &tally{total: len(todo), progress: o.Progress}
	l := newLedger(o.ImageDir, m, o.Warn)
	began := false
	each(stop, todo, o.Parallel, func(e *Entry) {
		t.Lock()
		began = true
		t.Unlock()
		t.start(e.ID)
		start := time.Now()
		err := o.dumpOne(abort, e)
		took := time.Since(start)
		t.Lock()
		if why := goneReason(err, "dump"); why != "" {
			e.Status, e.Error = StatusSkipped, why
			os.RemoveAll(filepath.Join(o.ImageDir, e.ID))
		} else if errors.Is(err, cr.ErrInterrupted) {
			// Its images are partial; no log tells more than the reason.
			os.RemoveAll(filepath.Join(o.ImageDir, e.ID))
			e.Status, e.Error = StatusFailed, err.Error()
			failed = append(failed, e)
		} else if err != nil {
			e.Status, e.Error = StatusFailed, err.Error()
			failed = append(failed, e)
		} else {
			e.Status, e.DumpMS = StatusDumped, ms(took)
		}
		skipped := e.Status == StatusSkipped
		l.ended(e)
		t.Unlock()
		if skipped {
			t.skip(e.ID, errors.New(e.Error), took)
			return
		}
		t.end(e.ID, err, took)
	})
	if !began && len(todo) > 0 && stop.Err() != nil {
		return false
	}
	for _, e := range todo {
		if e.Status == StatusPending {
			e.Status, e.Error = StatusFailed, "interrupted (a signal) before its dump began"
		}
	}
	failed = append(failed, o.late(m)...)
	// Interrupted, --stop stops none: a dump may have failed only because
	// CRIU had the terminal's Ctrl-C too.
	if o.Stop && stop.Err() == nil {
		for _, e := range failed {
			if err := container.Delete(o.Root, e.ID, true, o.Warn); err != nil {
				o.Warn(fmt.Errorf("stopping container %s, which was not dumped: %w", e.ID, err))
				continue
			}
			e.Stopped = true
		}
	}
	return true
}

// ledger keeps the manifest on disk true while the dumps run: each
// container's entry is written again as its dump ends, so that a
// checkpoint --all killed half way (SIGKILL, a third Ctrl-C) leaves the
// record of those it dumped, and stopped, for restore --all to bring
// back; only those under way then stay pending. It writes its own copies
// of the entries, each taken once the dump that fills it in has ended.
type ledger struct {
	dir    string
	m      Manifest // the header, and the copies
	copies map[*Entry]*Entry
	warn   func(error)
}

func newLedger(dir string, m *Manifest, warn func(error)) *ledger {
	l := &ledger{dir: dir, m: *m, copies: map[*Entry]*Entry{}, warn: warn}
	l.m.Containers = make([]*Entry, len(m.Containers))
	for i, e := range m.Containers {
		c := *e
		l.m.Containers[i], l.copies[e] = &c, &c
	}
	return l
}

// ended records e, whose dump has ended. A manifest that cannot be
// written now (the dumps filled the disk) is a warning: the last one has
// its room reserved. Preconditions: the caller holds the lock that
// serializes the dumps' ends.
func (l *ledger) ended(e *Entry) {
	*l.copies[e] = *e
	if err := writeManifest(l.dir, &l.m); err != nil {
		l.warn(fmt.Errorf("recording the dump of %s in the manifest: %w", e.ID, err))
	}
}

// late adds to the manifest, failed, the containers that run (or are
// paused) now but were created after the root was listed: they were not
// dumped, and without a word a reboot would end them unnoticed. It
// returns their entries.
func (o *CheckpointOpts) late(m *Manifest) []*Entry {
	listed := map[string]bool{}
	for _, e := range m.Containers {
		listed[e.ID] = true
	}
	var out []*Entry
	for _, h := range unlisted(o.Root, listed) {
		e := &Entry{ID: h.ID(), Status: StatusFailed, Error: "it was created while checkpoint --all ran, after the root was listed: not dumped",
			Bundle: h.Bundle(), Rootfs: h.Rootfs()}
		m.Containers = append(m.Containers, e)
		out = append(out, e)
	}
	return out
}

// unlisted returns the containers of root that run or are paused now and
// are not listed: those created since the operation listed the root.
func unlisted(root string, listed map[string]bool) []*container.Handle {
	ids, _ := listRoot(root)
	var out []*container.Handle
	for _, id := range ids {
		if listed[id] {
			continue
		}
		if h, err := container.Inspect(root, id); err == nil && (h.Status() == container.Running || h.Status() == container.Paused) {
			out = append(out, h)
		}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// goneReason says why an operation (op: dump, migration) that failed
// with err had nothing to do, "" when it had: the container was deleted,
// or stopped (or, for a migration, paused), after the listing found it
// running. Such a container is skipped, as one not running at the start
// would be, not failed: nothing of it is lost.
func goneReason(err error, op string) string {
	switch {
	case errors.Is(err, container.ErrNotExist):
		return "it was deleted before its " + op + " began"
	case errors.Is(err, container.ErrWrongState):
		return "it was no longer running when its " + op + " began"
	}
	return ""
}

// dumpOne dumps container e.ID into its own directory, with the bundle's
// config and, for a rootfs that a reboot would lose, the rootfs. Once
// abort ends, the dump stops where it can without harm (cr.ErrInterrupted).
func (o *CheckpointOpts) dumpOne(abort context.Context, e *Entry) error {
	h, err := container.Inspect(o.Root, e.ID)
	if err != nil {
		return err
	}
	if st := h.Status(); st != container.Running && st != container.Paused {
		return fmt.Errorf("%w: container %s is %s", container.ErrWrongState, e.ID, st)
	}
	// As it is at its dump, which a pause or resume since the planning
	// changed: the restore pauses it again, or not.
	e.Paused = h.Status() == container.Paused
	stdio := h.StdioFds()
	e.Stdio = stdioLinks(stdio)
	held := holdStdio(stdio, e.Stdio)
	defer closeAll(held[:])
	if i, link := container.HostTerminal(stdio); !e.Terminal && i >= 0 {
		return fmt.Errorf("its fd %d is the terminal %s, which no restore can give back: start it with its stdio redirected", i, link)
	}
	dir := filepath.Join(o.ImageDir, e.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("creating the container's image dir: %w", err)
	}
	if err := copyConfig(e.Bundle, dir); err != nil {
		return err
	}
	d := o.Dump
	d.Root, d.ID, d.ImagePath, d.WorkPath, d.Abort = o.Root, e.ID, dir, "", abort
	if !e.RootfsSaved {
		err = cr.Checkpoint(d)
	} else {
		err = o.dumpWithRootfs(e, d, h.Status() == container.Paused)
	}
	// Sized after the dump: the tasks wrote what they wrote before it.
	e.StdioFiles = kinds(held)
	return err
}

// holdStdio opens the files (paths, not pipes or sockets) the container's
// stdio is, to be measured after the dump.
func holdStdio(stdio [3]container.StdioFd, links [3]string) [3]*os.File {
	var out [3]*os.File
	for i, l := range links {
		if strings.HasPrefix(l, "/") {
			out[i], _ = os.OpenFile(stdio[i].Path(), unix.O_PATH, 0)
		}
	}
	return out
}

func kinds(files [3]*os.File) [3]*FileKind {
	var out [3]*FileKind
	for i, f := range files {
		var st unix.Stat_t
		if f != nil && unix.Fstat(int(f.Fd()), &st) == nil {
			out[i] = &FileKind{Mode: st.Mode, Size: st.Size}
		}
	}
	return out
}

// dumpWithRootfs saves the rootfs and the processes of one frozen
// container, so both are of the same moment: paused, archived, dumped
// with CRIU leaving it paused, then deleted (or resumed with
// LeaveRunning). It resumes the container when any step fails.
func (o *CheckpointOpts) dumpWithRootfs(e *Entry, d cr.CheckpointOpts, paused bool) error {
	if !paused {
		if err := container.Pause(o.Root, e.ID); err != nil {
			return err
		}
	}
	resume := func() error {
		if paused {
			return nil
		}
		return container.Resume(o.Root, e.ID)
	}
	leave := d.LeaveRunning
	d.LeaveRunning = true
	err := saveRootfs(d.Abort, e.Rootfs, filepath.Join(d.ImagePath, rootfsArchive))
	if err == nil {
		err = cr.Checkpoint(d)
	}
	if err != nil || leave {
		return errors.Join(err, resume())
	}
	return container.Delete(o.Root, e.ID, true, o.Warn)
}

// copyConfig keeps the bundle's config.json with the images: a bundle on
// storage a reboot empties is gone when the restore needs it.
func copyConfig(bundle, dir string) error {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600)
	}
	if err != nil {
		return fmt.Errorf("keeping the bundle's config: %w", err)
	}
	return nil
}

// stdioLinks reads where the container's stdio points.
func stdioLinks(stdio [3]container.StdioFd) [3]string {
	var out [3]string
	for i, at := range stdio {
		out[i], _ = os.Readlink(at.Path())
	}
	return out
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}
