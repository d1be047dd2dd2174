package checkpoint

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/osthread"
)

// CRIU probes the kernel at every start (vdso, userfaultfd, the cpu's
// xsave layout, a dozen more: 35-45 ms here) and keeps the answers in
// /run/criu.kdat, but it saves that cache only when /run is a tmpfs, so
// that a reboot clears it. Where /run lives on disk, as on this Debian
// without systemd, every CRIU run probes again. lkc then runs CRIU with a
// tmpfs of its own on /run, the host's /run entries bind-mounted into it
// (but CRIU's cache files, see kdatFile), seeded with the cache lkc saved
// for this boot and CRIU binary, and keeps what CRIU wrote there for the
// next run. See docs/criu.md.

// kdatStore is where lkc keeps CRIU's cache between runs.
var kdatStore = "/var/cache/lkc/criu.kdat"

const (
	runDir   = "/run"
	kdatName = "criu.kdat"
)

// kdatCache is the tmpfs /run of one CRIU run, held open to read back what
// CRIU saved there.
type kdatCache struct {
	run  *os.File   // the tmpfs's root
	dirs []*os.File // the image and work dirs, opened again in CRIU's namespace
	key  []byte     // the boot and CRIU binary the cache belongs to
	was  []byte     // what lkc seeded it with
}

// kdatWanted reports whether CRIU needs lkc's help to keep its cache.
func kdatWanted() bool {
	var st unix.Statfs_t
	return unix.Statfs(runDir, &st) == nil && st.Type != unix.TMPFS_MAGIC
}

// kdatKey identifies this boot and CRIU binary: a cache from another boot
// or another build of CRIU is not used.
func kdatKey(criu string) ([]byte, error) {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Stat(criu, &st); err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "lkc criu.kdat %s %s %d:%d %d %d\n",
		bytes.TrimSpace(boot), criu, st.Dev, st.Ino, st.Size, st.Mtim.Nano()), nil
}

// startCriu starts cmd, the CRIU binary criu, keeping CRIU's cache where
// the host's /run cannot, and where pl says when not nil. The
// returned cache, when not nil, is to be saved and closed once CRIU
// exited. A namespace lkc fails to build costs only the probing time: CRIU
// then starts as it is.
func startCriu(cmd *exec.Cmd, criu string, o *Opts, pl *placement) (*kdatCache, error) {
	var k *kdatCache
	if kdatWanted() {
		k = newKdatCache(criu)
	}
	if k == nil && pl == nil {
		return nil, cmd.Start()
	}
	// Namespaces and v1 cgroups can belong to one thread: CRIU starts from
	// a thread of its own, which returns to the host's mount and network
	// namespaces and then dies with its goroutine (unshare gave it a
	// private cwd and root as well), taking the cgroups and cgroup
	// namespace it joined along.
	var err error
	osthread.Spare(func() {
		if pl != nil {
			var back func()
			if back, err = pl.enter(o); err != nil {
				return
			}
			defer back()
		}
		if k != nil {
			err = k.start(cmd, o)
			var se setupError
			if !errors.As(err, &se) {
				return
			}
			k.close()
			k = nil
		}
		err = cmd.Start()
	})
	if err != nil {
		if k != nil {
			k.close()
		}
		return nil, err
	}
	return k, nil
}

// setupError is a failure to prepare CRIU's /run, before CRIU started.
type setupError struct{ error }

// newKdatCache reads the cache saved for this boot and criu; nil when the
// key cannot be made.
func newKdatCache(criu string) *kdatCache {
	key, err := kdatKey(criu)
	if err != nil {
		return nil
	}
	k := &kdatCache{key: key}
	if saved, err := os.ReadFile(kdatStore); err == nil {
		if data, ok := bytes.CutPrefix(saved, key); ok {
			k.was = data
		}
	}
	return k
}

func (k *kdatCache) start(cmd *exec.Cmd, o *Opts) error {
	host, err := os.Open("/proc/thread-self/ns/mnt")
	if err != nil {
		return setupError{err}
	}
	defer host.Close()
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return setupError{fmt.Errorf("criu's mount namespace: %w", err)}
	}
	if err = k.build(); err == nil {
		err = k.reopenDirs(o)
	}
	if err != nil {
		err = setupError{err}
	} else {
		err = cmd.Start()
	}
	// The thread dies with its goroutine either way; but the main thread
	// is wedged instead, and /proc/self/ns/mnt would then name CRIU's
	// namespace. Should the way back fail, CRIU, if started, is unaffected.
	unix.Setns(int(host.Fd()), unix.CLONE_NEWNS)
	return err
}

// build makes /run a tmpfs with the host's /run entries but CRIU's own
// bind-mounted back and the saved cache in place.
func (k *kdatCache) build() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("making criu's mounts private: %w", err)
	}
	old, err := os.Open(runDir)
	if err != nil {
		return err
	}
	defer old.Close()
	names, err := old.Readdirnames(-1)
	if err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", runDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755,size=1m"); err != nil {
		return fmt.Errorf("mounting criu's /run: %w", err)
	}
	if k.run, err = os.Open(runDir); err != nil {
		return err
	}
	for _, name := range names {
		if kdatFile(name) {
			continue
		}
		if err := bindBack(old, name); err != nil {
			return fmt.Errorf("criu's /run: %s: %w", name, err)
		}
	}
	if k.was != nil {
		return os.WriteFile(filepath.Join(runDir, kdatName), k.was, 0o600)
	}
	return nil
}

// reopenDirs points o's image and work dirs at handles opened in CRIU's
// namespace. CRIU reaches them through /proc/<lkc>/fd, and a handle opened
// in the host's namespace is a mount of that namespace: CRIU's restore
// mounts its cgroup yard in the work dir, and mount(2) refuses (EINVAL) a
// mount point outside the caller's namespace.
func (k *kdatCache) reopenDirs(o *Opts) error {
	if o == nil {
		return nil
	}
	fds := []*int{&o.ImagesDirFd, &o.WorkDirFd}
	reopened := make([]int, len(fds))
	for i, fd := range fds {
		if *fd <= 0 {
			continue
		}
		path, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", *fd))
		if err != nil {
			return err
		}
		f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		k.dirs = append(k.dirs, f)
		reopened[i] = int(f.Fd())
	}
	for i, fd := range fds {
		if reopened[i] != 0 {
			*fd = reopened[i]
		}
	}
	return nil
}

// kdatFile reports whether a /run entry is CRIU's cache or its temporary
// file, which the host's /run must not lend CRIU: every CRIU that runs on
// a disk-backed /run (install-criu.sh's `criu check`, runc's checkpoints)
// leaves an empty criu.kdat.tmp there, and CRIU creates that name with
// O_EXCL before it saves, so carried over it would stop every save; a
// criu.kdat carried over would have lkc's seed written through to the
// host's disk, where it outlives a reboot. Older CRIUs named the
// temporary file .criu.kdat.
func kdatFile(name string) bool {
	return strings.HasPrefix(strings.TrimPrefix(name, "."), kdatName)
}

// bindBack makes /run/name in the tmpfs show name of the host's /run.
func bindBack(old *os.File, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(int(old.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	dst := filepath.Join(runDir, name)
	src := fmt.Sprintf("/proc/self/fd/%d/%s", old.Fd(), name)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	case unix.S_IFDIR:
		if err := os.Mkdir(dst, 0o755); err != nil {
			return err
		}
	default:
		if err := os.WriteFile(dst, nil, 0o600); err != nil {
			return err
		}
	}
	return unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, "")
}

// save keeps what CRIU left in its /run for the next run, when it changed.
// It is a cache: a failure to keep it only costs the next run its probing.
func (k *kdatCache) save() {
	if k.run == nil {
		return
	}
	fd, err := unix.Openat(int(k.run.Fd()), kdatName, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), kdatName)
	defer f.Close()
	var data bytes.Buffer
	if _, err := data.ReadFrom(f); err != nil || data.Len() == 0 || bytes.Equal(data.Bytes(), k.was) {
		return
	}
	if err := os.MkdirAll(filepath.Dir(kdatStore), 0o755); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(kdatStore), ".criu.kdat.*")
	if err != nil {
		return
	}
	_, err = tmp.Write(append(append([]byte{}, k.key...), data.Bytes()...))
	if cerr := tmp.Close(); err == nil && cerr == nil {
		err = os.Rename(tmp.Name(), kdatStore)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
}

func (k *kdatCache) close() {
	if k.run != nil {
		k.run.Close()
	}
	for _, f := range k.dirs {
		f.Close()
	}
}
