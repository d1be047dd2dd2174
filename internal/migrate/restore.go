package migrate

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/container"
	"github.com/lkc-containers/lkc/internal/cr"
)

// restore brings the container up from the received images, in cgroups
// with the limits it had on the source, and announces its addresses from
// here.
func (r *receiver) restore(body json.RawMessage) error {
	var req restoreReq
	if err := json.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("%w: decoding the restore request: %v", ErrProtocol, err)
	}
	for _, name := range []string{req.Image, req.Parent} {
		if name != "" && (!filepath.IsLocal(name) || strings.Contains(name, "/")) {
			return fmt.Errorf("%w: image directory %q", ErrProtocol, name)
		}
	}
	if r.restored {
		return fmt.Errorf("%w: a second restore", ErrProtocol)
	}
	o, t, err := r.restoreOpts(req)
	if err != nil {
		return err
	}
	stdio, err := openStdio(req.Stdio, o.ImagePath, r.bundle)
	if err != nil {
		return err
	}
	defer closeFiles(stdio[:])
	t.Stdio = stdio
	// The staging mounts go after the reply: their unmounts cost an RCU
	// grace period each, and the container runs without them.
	var release func()
	t.Release = func(unmount func()) { release = unmount }
	defer func() {
		if release != nil {
			release()
		}
	}()
	// Restore registers the container before it returns: from here on a
	// failure must delete it.
	r.restored = true
	if _, err := cr.RestoreTuned(o, t); err != nil {
		// The log goes with the staging directory: its errors go to the sender.
		return fmt.Errorf("restoring container %s: %w%s", r.of.ID, err, criuErrors(filepath.Join(o.ImagePath, "restore.log")))
	}
	// Restored frozen (cr.RestoreTuning.Frozen): the copy here has not
	// run, and runs only on the commit.
	st, err := container.State(r.o.Root, r.of.ID)
	if err != nil {
		return err
	}
	if st.Status != container.Paused {
		return fmt.Errorf("container %s is %s after its restore, want paused until the commit", r.of.ID, st.Status)
	}
	r.isolated = req.NetworkIsolated
	holdRestored()
	return r.c.send(opRestored, nil)
}

// run lets the restored container run on the commit, connects it to the
// network and announces its addresses from here.
func (r *receiver) run() error {
	if r.isolated {
		for _, v := range r.of.Veths {
			if err := connect(v); err != nil {
				return err
			}
		}
	}
	if err := container.Resume(r.o.Root, r.of.ID); err != nil {
		return fmt.Errorf("letting %s run: %w", r.of.ID, err)
	}
	if len(r.of.Veths) == 0 {
		return nil
	}
	st, err := container.State(r.o.Root, r.of.ID)
	if err != nil {
		return err
	}
	if err := announce(st.Pid); err != nil {
		r.o.Warn(err)
	}
	return nil
}

// RestoredHoldEnv, set to the path of a fifo in lkc serve's environment,
// makes a receiver that restored the container, frozen, wait before it
// says restored until the fifo is opened for writing and closed: the
// integration tests of an abort, or a receiver's death, in that window
// need it.
const RestoredHoldEnv = "LKC_TEST_SERVE_RESTORED_HOLD"

func holdRestored() {
	if fifo := os.Getenv(RestoredHoldEnv); fifo != "" {
		os.ReadFile(fifo) // returns once the test has opened and closed it
	}
}

// restoreOpts are the options of the restore req asks for: the images
// and bundle staged here, the source's limits, its veths, the page tunnel
// of a post-copy.
func (r *receiver) restoreOpts(req restoreReq) (cr.RestoreOpts, cr.RestoreTuning, error) {
	res, err := r.resources()
	if err != nil {
		return cr.RestoreOpts{}, cr.RestoreTuning{}, err
	}
	pageServer, err := r.pageTunnel(req.PageServer)
	if err != nil {
		return cr.RestoreOpts{}, cr.RestoreTuning{}, err
	}
	o := cr.RestoreOpts{
		Root: r.o.Root, ID: r.of.ID, Bundle: r.bundle, CRIU: r.o.CRIU,
		ImagePath: filepath.Join(r.bundle, "images", req.Image),
		Detach:    true, TCPEstablished: r.of.TCPEstablished, FileLocks: true,
		ManageCgroupsMode: "soft", Warn: r.o.Warn, Verbose: r.o.Verbose,
		LazyPages: pageServer != "", PageServer: pageServer,
	}
	t := cr.RestoreTuning{
		NetworkIsolated: req.NetworkIsolated, Resources: res, FlatCgroups: req.FlatCgroups,
		OwnBundle: true, Frozen: true,
	}
	if req.Parent != "" {
		o.ParentPath = "../" + req.Parent
	}
	if r.o.Adopt != nil {
		o.Adopt = func(cfg *config.Config) (func(), error) { return r.o.Adopt(r.o.Root, r.of.ID, cfg) }
	}
	for _, v := range r.of.Veths {
		if req.NetworkIsolated {
			// Connected on the commit, as the container starts to run.
			v.Bridge = ""
		}
		t.External = append(t.External, v.External())
	}
	return o, t, nil
}

// pageTunnel starts, for a post-copy, the tunnel that carries the pages
// from the sender's page proxy (at the port of addr on the sender's host)
// and returns where CRIU's lazy-pages daemon connects to it; "" without
// a page server. The tunnel lasts as long as the session.
func (r *receiver) pageTunnel(addr string) (string, error) {
	if addr == "" {
		return "", nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%w: page server %q: %v", ErrProtocol, addr, err)
	}
	if r.tunnel, err = newPageTunnel(r.c.nc.RemoteAddr(), port, r.c.pages); err != nil {
		return "", err
	}
	return r.tunnel.Addr(), nil
}

// openStdio gives the restored tasks replacements, made here, for the
// fds 0-2 the dump recorded as files outside the container
// (descriptors.json, runc's record): CRIU wants the same kind of file (a
// character device for /dev/null, a regular file of the same mode and
// size), which the receiver's own stdio is not. The sender only says what
// each was: the receiver opens its own /dev/null, or creates a file of
// that mode and size in the bundle, where the container's output then
// goes on; it never opens a path the sender names. Files inside the
// container (its terminal) CRIU restores itself.
func openStdio(want [3]stdioFile, images, bundle string) (files [3]*os.File, err error) {
	var keys []string
	if data, err := os.ReadFile(filepath.Join(images, "descriptors.json")); err == nil {
		if err := json.Unmarshal(data, &keys); err != nil {
			return files, fmt.Errorf("%w: decoding the container's stdio record: %v", ErrProtocol, err)
		}
	}
	defer func() {
		if err != nil {
			closeFiles(files[:])
		}
	}()
	for i, f := range want {
		if f.Kind == "" || i >= len(keys) || !strings.HasPrefix(keys[i], "file[") {
			continue
		}
		flag := os.O_WRONLY | os.O_APPEND
		if i == 0 {
			flag = os.O_RDONLY
		}
		if files[i], err = f.open(filepath.Join(bundle, fmt.Sprintf("stdio-%d", i)), flag); err != nil {
			return files, fmt.Errorf("making the container's fd %d here: %w", i, err)
		}
	}
	return files, nil
}

// open makes f's replacement: /dev/null, or a new file at path.
func (f stdioFile) open(path string, flag int) (*os.File, error) {
	switch f.Kind {
	case stdioNull:
		return os.OpenFile("/dev/null", flag|unix.O_NOCTTY, 0)
	case stdioFileKind:
		if f.Size < 0 || f.Size > maxOfferBytes || f.Mode&^0o777 != 0 {
			return nil, fmt.Errorf("%w: stdio file of mode %#o and %d bytes", ErrProtocol, f.Mode, f.Size)
		}
		if err := makeFile(path, f.Mode, f.Size); err != nil {
			return nil, err
		}
		return os.OpenFile(path, flag|unix.O_NOCTTY|unix.O_NOFOLLOW, 0)
	}
	return nil, fmt.Errorf("%w: stdio of kind %q", ErrProtocol, f.Kind)
}

// makeFile creates a sparse file of mode and size at path, which must not
// exist.
func makeFile(path string, mode uint32, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		// After creation: the umask does not apply.
		err = f.Chmod(os.FileMode(mode))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// criuErrors returns the last error lines of a CRIU log, for a message.
func criuErrors(log string) string {
	data, err := os.ReadFile(log)
	if err != nil {
		return ""
	}
	var errs []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, "Error") && !strings.Contains(l, "RLIMIT_NOFILE") {
			errs = append(errs, strings.TrimSpace(l))
		}
	}
	if len(errs) == 0 {
		return ""
	}
	return ": " + strings.Join(errs[max(0, len(errs)-3):], " | ")
}
