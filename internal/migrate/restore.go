package migrate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/container"
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
	res, err := r.resources()
	if err != nil {
		return err
	}
	o := container.RestoreOpts{
		Root: r.o.Root, ID: r.of.ID, Bundle: r.bundle, CRIU: r.o.CRIU,
		ImagePath: filepath.Join(r.bundle, "images", req.Image),
		Detach:    true, TCPEstablished: r.of.TCPEstablished, FileLocks: true,
		ManageCgroupsMode: "soft", Warn: r.o.Warn, Verbose: r.o.Verbose,
		LazyPages: req.PageServer != "", PageServer: req.PageServer,
		NetworkIsolated: req.NetworkIsolated, Resources: res, FlatCgroups: req.FlatCgroups,
	}
	if req.Parent != "" {
		o.ParentPath = "../" + req.Parent
	}
	for _, v := range r.of.Veths {
		if req.NetworkIsolated {
			// Connected by lkc once the container runs (below).
			v.Bridge = ""
		}
		o.External = append(o.External, v.External())
	}
	stdio, err := openStdio(req.Stdio, o.ImagePath)
	if err != nil {
		return err
	}
	defer closeFiles(stdio[:])
	o.Stdio = stdio
	// The staging mounts go after the reply: their unmounts cost an RCU
	// grace period each, and the container runs without them.
	var release func()
	o.Release = func(unmount func()) { release = unmount }
	defer func() {
		if release != nil {
			release()
		}
	}()
	// Restore registers the container before it returns: from here on a
	// failure must delete it.
	r.restored = true
	if _, err := container.Restore(o); err != nil {
		// The log goes with the staging directory: its errors go to the sender.
		return fmt.Errorf("restoring container %s: %w%s", r.of.ID, err, criuErrors(filepath.Join(o.ImagePath, "restore.log")))
	}
	st, err := container.State(r.o.Root, r.of.ID)
	if err != nil {
		return err
	}
	if st.Status == container.Paused {
		// The source was frozen for its final dump; CRIU may restore the
		// freezer state with the rest of the cgroup.
		if err := container.Resume(r.o.Root, r.of.ID); err != nil {
			return err
		}
		st.Status = container.Running
	}
	if st.Status != container.Running {
		return fmt.Errorf("container %s is %s after its restore", r.of.ID, st.Status)
	}
	if req.NetworkIsolated {
		for _, v := range r.of.Veths {
			if err := connect(v); err != nil {
				return err
			}
		}
	}
	if len(r.of.Veths) > 0 {
		if err := announce(st.Pid); err != nil {
			r.o.Warn(err)
		}
	}
	return r.c.send(opRestored, nil)
}

// openStdio reopens here the paths the container's stdio pointed at on the
// source (its /dev/null, a file on shared storage) where the dump named
// them as files outside the container (descriptors.json, runc's record):
// CRIU hands them to the restored tasks in place of the source's files,
// and wants the same kind of file (a character device for /dev/null),
// which the receiver's own stdio is not. Files inside the container (its
// terminal) CRIU restores itself.
func openStdio(paths [3]string, images string) (files [3]*os.File, err error) {
	var keys []string
	if data, err := os.ReadFile(filepath.Join(images, "descriptors.json")); err == nil {
		if err := json.Unmarshal(data, &keys); err != nil {
			return files, fmt.Errorf("%w: decoding the container's stdio record: %v", ErrProtocol, err)
		}
	}
	for i, p := range paths {
		if p == "" || i >= len(keys) || !strings.HasPrefix(keys[i], "file[") {
			continue
		}
		if !filepath.IsAbs(p) {
			closeFiles(files[:])
			return files, fmt.Errorf("%w: stdio path %q is not absolute", ErrProtocol, p)
		}
		flag := os.O_WRONLY | os.O_APPEND
		if i == 0 {
			flag = os.O_RDONLY
		}
		if files[i], err = os.OpenFile(p, flag|unix.O_NOCTTY, 0); err != nil {
			closeFiles(files[:])
			return files, fmt.Errorf("reopening the container's fd %d here: %w", i, err)
		}
	}
	return files, nil
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
