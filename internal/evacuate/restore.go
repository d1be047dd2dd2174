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

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/container"
	"github.com/lkc-containers/lkc/internal/cr"
	"github.com/lkc-containers/lkc/internal/effective"
	"github.com/lkc-containers/lkc/internal/state"
)

// RestoreOpts are the options of `lkc restore --all`.
type RestoreOpts struct {
	// Root is where the containers are restored; "" is the root they
	// were dumped from (the manifest's).
	Root     string
	ImageDir string
	Parallel int
	// ConsoleDir holds a console socket per container with a terminal,
	// named after its id, to hand the restored terminal's master to.
	ConsoleDir string
	// Restore is what every restore is told (CRIU, TCPEstablished, ...);
	// its Root, ID, paths, bundle and Detach are set per container.
	Restore cr.RestoreOpts
	// Adopt is cr.RestoreOpts.Adopt for container id.
	Adopt    func(root, id string, cfg *config.Config) (release func(), err error)
	Progress func(Event)
}

// Result is what became of one container of a manifest.
type Result struct {
	ID     string  `json:"id"`
	Status string  `json:"status"` // "restored", "failed" or the manifest's status when not dumped
	Error  string  `json:"error,omitempty"`
	Bundle string  `json:"bundle,omitempty"` // the bundle it runs from
	MS     float64 `json:"ms,omitempty"`
}

// Result statuses of a restore.
const (
	StatusRestored = "restored"
	StatusNotRun   = "failed"
)

// RestoreAll brings back, detached, every container the manifest of
// o.ImageDir says was dumped, at most o.Parallel at a time, and says what
// became of each (those not dumped too, with the dump's reason). A
// container whose restore fails leaves nothing behind. Once ctx ends (a
// signal), no more restores start: those under way finish, the network
// namespaces are unlocked, and the rest are reported not restored.
func RestoreAll(ctx context.Context, o RestoreOpts) ([]Result, error) {
	m, err := ReadManifest(o.ImageDir)
	if err != nil {
		return nil, err
	}
	unlock, err := lockImageDir(o.ImageDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if o.Root == "" {
		o.Root = m.Root
	}
	if !filepath.IsAbs(o.Root) {
		return nil, fmt.Errorf("%s: root %q is not an absolute path", filepath.Join(o.ImageDir, ManifestFile), o.Root)
	}
	if fi, err := os.Stat(o.Root); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("root %s: not a directory", o.Root)
	}
	o.Restore.TCPEstablished = o.Restore.TCPEstablished || m.TCPEstablished
	results := make([]Result, len(m.Containers))
	var todo []int
	seen := map[string]bool{}
	for i, e := range m.Containers {
		results[i] = Result{ID: e.ID, Status: e.Status, Error: e.Error}
		if err := checkEntryID(e.ID, seen); err != nil {
			results[i].Status, results[i].Error = StatusNotRun, err.Error()
		} else if e.Status == StatusDumped {
			todo = append(todo, i)
		} else if e.Status == StatusPending {
			results[i].Error = "its dump never finished (the checkpoint was interrupted)"
		}
	}
	if err := o.checkRoom(m, todo); err != nil {
		return nil, err
	}
	if o.Restore.TCPEstablished {
		warn := o.Restore.Warn
		if warn == nil {
			warn = func(error) {}
		}
		defer lockNetns(joinedNetns(m, o.ImageDir), warn)()
	}
	t := &tally{total: len(todo), progress: o.Progress}
	each(ctx, todo, o.Parallel, func(i int) {
		e := m.Containers[i]
		t.start(e.ID)
		start := time.Now()
		bundle, err := o.restoreOne(e)
		r := &results[i]
		r.MS = ms(time.Since(start))
		if err != nil {
			r.Status, r.Error = StatusNotRun, err.Error()
		} else {
			r.Status, r.Error, r.Bundle = StatusRestored, "", bundle
		}
		t.end(e.ID, err, time.Since(start))
	})
	for _, i := range todo {
		if results[i].Status == StatusDumped {
			results[i].Status, results[i].Error = StatusNotRun, "interrupted (a signal) before its restore began"
		}
	}
	return results, nil
}

// checkRoom refuses an image directory whose filesystem cannot hold the
// saved rootfs the restores of the entries todo indexes unpack there (as
// large as their archives, a tenth more); those whose id the root holds
// are not restored, and not counted. On a tmpfs or ramfs the unpacked
// files take memory too (effective.DirSpace).
func (o *RestoreOpts) checkRoom(m *Manifest, todo []int) error {
	var need, n int64
	for _, i := range todo {
		e := m.Containers[i]
		if !e.RootfsSaved {
			continue
		}
		if _, err := os.Lstat(filepath.Join(o.Root, e.ID)); err == nil {
			continue
		}
		if fi, err := os.Stat(filepath.Join(o.ImageDir, e.ID, rootfsArchive)); err == nil {
			need += fi.Size()
			n++
		}
	}
	if n == 0 {
		return nil
	}
	need += need / 10
	space, err := effective.DirSpace("/", o.ImageDir, os.Getpid())
	if err != nil {
		return err
	}
	if space.Free < uint64(need) {
		return fmt.Errorf("image dir %s has %s, unpacking the saved rootfs of %d containers needs about %d MiB",
			o.ImageDir, space, n, (need+1<<20-1)>>20)
	}
	return nil
}

// checkEntryID refuses an id of the manifest that is not a container id
// or comes twice: the id names the entry's directories, which the
// restore makes and removes, so ".." would reach beside the image
// directory and a twin would share its twin's.
func checkEntryID(id string, seen map[string]bool) error {
	if err := state.CheckID(id); err != nil {
		return err
	}
	if seen[id] {
		return fmt.Errorf("container %s is in the manifest twice", id)
	}
	seen[id] = true
	return nil
}

// restoreOne restores one dumped container and returns the bundle it
// runs from.
func (o *RestoreOpts) restoreOne(e *Entry) (string, error) {
	// Refused before the bundle is made: DIR/<id>/bundle may be the
	// root filesystem of the container an earlier restore --all brought
	// back, which is running under this id.
	if _, err := os.Lstat(filepath.Join(o.Root, e.ID)); err == nil {
		return "", fmt.Errorf("%w: %s", state.ErrExist, e.ID)
	}
	dir := filepath.Join(o.ImageDir, e.ID)
	bundle, undo, err := restoreBundle(e, dir)
	if err != nil {
		return "", err
	}
	r := o.Restore
	r.Root, r.ID, r.Bundle, r.ImagePath, r.WorkPath, r.Detach = o.Root, e.ID, bundle, dir, "", true
	r.PidFile, r.ConsoleSocket = "", ""
	if e.Terminal {
		if o.ConsoleDir == "" {
			undo()
			return "", errors.New("it has a terminal: restore --all needs --console-dir, with a console socket named after it there")
		}
		r.ConsoleSocket = filepath.Join(o.ConsoleDir, e.ID)
	}
	if o.Adopt != nil {
		r.Adopt = func(cfg *config.Config) (func(), error) { return o.Adopt(o.Root, e.ID, cfg) }
	}
	t := cr.RestoreTuning{Annotations: e.Annotations}
	if len(e.Resources) > 0 && string(e.Resources) != "null" {
		t.Resources = new(config.Resources)
		if err := json.Unmarshal(e.Resources, t.Resources); err != nil {
			undo()
			return "", fmt.Errorf("decoding its limits: %w", err)
		}
	}
	files, err := openStdio(e, dir)
	if err != nil {
		undo()
		return "", err
	}
	defer closeAll(files[:])
	t.Stdio = files
	if _, err := cr.RestoreTuned(r, t); err != nil {
		undo()
		return "", err
	}
	if e.Paused {
		// CRIU lets the tasks run: paused again at once, as it was. One
		// that cannot be is restored all the same, running.
		if err := container.Pause(o.Root, e.ID); err != nil && o.Restore.Warn != nil {
			o.Restore.Warn(fmt.Errorf("container %s was paused at the dump and runs now: %w", e.ID, err))
		}
	}
	return bundle, nil
}

// restoreBundle returns the bundle to restore e from: the original when it
// is still there and its rootfs was not saved, else <dir>/bundle, made
// from the kept config with the saved rootfs unpacked in it (or the
// original rootfs, by its absolute path). undo removes what it made.
func restoreBundle(e *Entry, dir string) (string, func(), error) {
	nothing := func() {}
	if !e.RootfsSaved && e.RootfsOverlay && !overlayRoot(e.Rootfs) {
		return "", nil, fmt.Errorf("its rootfs %s was an overlay mount, which is gone (a reboot takes it) and was not saved: mount it again, or checkpoint with --save-rootfs", e.Rootfs)
	}
	if !e.RootfsSaved {
		if _, err := os.Stat(filepath.Join(e.Bundle, "config.json")); err == nil {
			return e.Bundle, nothing, nil
		}
	}
	bundle := filepath.Join(dir, "bundle")
	if err := os.RemoveAll(bundle); err != nil {
		return "", nil, fmt.Errorf("clearing %s: %w", bundle, err)
	}
	if err := os.Mkdir(bundle, 0o700); err != nil {
		return "", nil, fmt.Errorf("making the bundle: %w", err)
	}
	undo := func() { os.RemoveAll(bundle) }
	root := e.Rootfs
	if e.RootfsSaved {
		root = filepath.Join(bundle, "rootfs")
		if err := unpackRootfs(filepath.Join(dir, rootfsArchive), root); err != nil {
			undo()
			return "", nil, err
		}
	} else if _, err := os.Stat(root); err != nil {
		undo()
		return "", nil, fmt.Errorf("its rootfs is gone and was not saved: %w", err)
	}
	if err := writeConfig(filepath.Join(dir, "config.json"), bundle, root); err != nil {
		undo()
		return "", nil, err
	}
	return bundle, undo, nil
}

// writeConfig writes the kept config into bundle with root.path set to
// root, every other field as it was.
func writeConfig(kept, bundle, root string) error {
	data, err := os.ReadFile(kept)
	if err != nil {
		return fmt.Errorf("reading the kept config: %w", err)
	}
	var s map[string]json.RawMessage
	var r map[string]any
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("decoding the kept config: %w", err)
	}
	if raw, ok := s["root"]; ok {
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("decoding the kept config's root: %w", err)
		}
	}
	if r == nil {
		r = map[string]any{}
	}
	r["path"] = root
	if s["root"], err = json.Marshal(r); err == nil {
		data, err = json.Marshal(s)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600)
	}
	if err != nil {
		return fmt.Errorf("writing the bundle's config: %w", err)
	}
	return nil
}

// openStdio opens what the restored tasks get in place of the fds 0-2
// the dump recorded (descriptors.json, in dir) as pipes or files from
// outside the container. A file that is still there is opened again; one
// that is gone (a log on a tmpfs, after a reboot) is replaced, as CRIU
// wants the same kind of file, by dir/fd<N>.log of its mode and size,
// where the output then goes; everything else gets /dev/null (a pipe's
// other end is gone after a reboot, and the restored tasks must not hold
// the restoring lkc's own stdio).
func openStdio(e *Entry, dir string) (files [3]*os.File, err error) {
	var keys []string
	if data, err := os.ReadFile(filepath.Join(dir, "descriptors.json")); err == nil {
		if err := json.Unmarshal(data, &keys); err != nil {
			return files, fmt.Errorf("decoding the stdio record: %w", err)
		}
	}
	for i := range files {
		flag := os.O_WRONLY | os.O_APPEND
		if i == 0 {
			flag = os.O_RDONLY
		}
		path := "/dev/null"
		if i < len(keys) && strings.HasPrefix(keys[i], "file[") {
			path, err = stdioStandIn(e.Stdio[i], e.StdioFiles[i], filepath.Join(dir, fmt.Sprintf("fd%d.log", i)))
		}
		if err == nil {
			files[i], err = openStandIn(path, flag)
		}
		if err != nil {
			closeAll(files[:])
			return files, fmt.Errorf("a file for its fd %d: %w", i, err)
		}
	}
	return files, nil
}

// stdioStandIn returns the file a restored fd opens: the path it had
// when that is still a file of the same kind, else a regular file made at
// standIn with the recorded mode and size, else /dev/null.
func stdioStandIn(path string, kind *FileKind, standIn string) (string, error) {
	var st unix.Stat_t
	if kind == nil {
		return "/dev/null", nil
	}
	if strings.HasPrefix(path, "/") && unix.Stat(path, &st) == nil && st.Mode&unix.S_IFMT == kind.Mode&unix.S_IFMT {
		return path, nil
	}
	if kind.Mode&unix.S_IFMT != unix.S_IFREG {
		return "/dev/null", nil
	}
	f, err := os.OpenFile(standIn, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := f.Chmod(os.FileMode(kind.Mode & 0o777)); err != nil {
		return "", err
	}
	return standIn, f.Truncate(kind.Size)
}

// openStandIn opens path, a restored fd's file, without waiting: the
// open of a named pipe for writing waits for a reader, which after the
// dump may never come. Such a pipe nobody reads is refused: CRIU wants a
// named pipe of the same mode in its place, and a stand-in nobody reads
// would stall the container once its buffer is full.
func openStandIn(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ENXIO) {
		return nil, fmt.Errorf("it was the named pipe %s, which nobody reads now: start its reader and restore it again", path)
	}
	if err != nil {
		return nil, err
	}
	// The restored tasks see the file as it was: blocking.
	if err := unix.SetNonblock(int(f.Fd()), false); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}
