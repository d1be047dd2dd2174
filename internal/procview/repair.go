package procview

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/nsenter"
	"github.com/lkc-containers/lkc/internal/procfs"
	"github.com/lkc-containers/lkc/internal/registry"
	"github.com/lkc-containers/lkc/internal/state"
)

// RemountArgs start the helper that replaces a container's bind mounts of
// the virtual files (after the program name); the files' paths relative to
// the container's root follow. The helper runs in the container's mount
// namespace (joined by internal/nsenter's constructor before Go starts
// threads: setns into a mount namespace needs a single-threaded process)
// and finds the container's root on fd 4 and the new mounts on fds 5....
var RemountArgs = []string{"daemon", "--remount"}

// PollArgs start the helper that has the kernel stop asking the view's
// server FUSE_POLL (fuse.Server.StopPolls); the path of a regular file of
// the mount follows. It is a process of its own: the worker must never
// wait for its own server's answer.
var PollArgs = []string{"daemon", "--poll-once"}

// RepairDieEnv, set to the path of a file in the daemon's environment,
// makes a worker SIGKILL itself as its start-up repair begins, if it can
// remove that file: the crash, once, between a new session's deposit in
// the holder and the repair of any container, that the integration test
// of the successor's repair needs.
const RepairDieEnv = "LKC_TEST_PROC_REPAIR_DIE"

// CloneDieEnv, set to the path of a file in the daemon's environment,
// makes a worker SIGKILL itself, if it can remove that file, once its
// server has read a LOOKUP of a slot's cloneDieDir and before it answers
// it: the crash, once, with a clone's look-up in hand, that the
// integration test of a worker killed in its repair's clones needs. Only
// a clone of a container's files (a repair's, or a create's) looks that
// name up: the poll helper and the containers' reads do not.
const CloneDieEnv = "LKC_TEST_PROC_CLONE_DIE"

// cloneDieDir is the directory of a slot whose look-up CloneDieEnv waits
// for: the top of procfs.Files's one file under /sys, which a clone walks
// after those under proc, and the poll helper never.
const cloneDieDir = "sys"

// repair gives every served running container the new session's files in
// place of its dead bind mounts: with no session kept by the holder (both
// daemon processes died, or the daemon was stopped) they answer ENOTCONN
// until replaced, as docs/daemon.md's "Both processes die" says.
func (s *Service) repair() {
	if die := os.Getenv(RepairDieEnv); die != "" && os.Remove(die) == nil {
		unix.Kill(os.Getpid(), unix.SIGKILL)
	}
	for _, n := range s.slots() {
		s.mu.Lock()
		v := s.views[n]
		s.mu.Unlock()
		if v == nil {
			continue
		}
		if err := s.repairView(v); err != nil {
			s.logf("proc: repairing container %s's files: %v", v.entry.ID, err)
		}
	}
}

// Reattach returns once e's files in its mount namespace are this
// session's, repairing them first when they are not (daemonapi.OpReattach:
// an lkc exec after the daemon was stopped or both its processes died,
// which must not see the start's repair still to come). Repairing the
// container asked for at once, rather than waiting for its turn in the
// start's pass, also makes its wait independent of how many containers
// the daemon serves.
func (s *Service) Reattach(e *registry.Entry) error {
	if !e.Features.Proc {
		return nil
	}
	s.mu.Lock()
	v := s.views[e.Slot]
	s.mu.Unlock()
	if v == nil || v.gen != e.Gen {
		return fmt.Errorf("slot %d of container %s: not served", e.Slot, e.ID)
	}
	if err := s.ensureMounted(); err != nil {
		return err
	}
	return s.repairView(v)
}

// repairView repairs v's container unless another repair of it runs, in
// which case it waits for that one.
func (s *Service) repairView(v *view) error {
	v.repairing.Lock()
	defer v.repairing.Unlock()
	return s.repairOne(v.entry)
}

// repairOne replaces e's bind mounts when its init runs and they are not
// this session's.
func (s *Service) repairOne(e *registry.Entry) error {
	st, err := e.LoadState()
	if err != nil {
		return err
	}
	if st.InitPid == 0 || !state.Alive(st.InitPid, st.InitStart) || s.served(st.InitPid) {
		return nil
	}
	root, err := os.OpenFile(fmt.Sprintf("/proc/%d/root", st.InitPid), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("opening the root of init %d: %w", st.InitPid, err)
	}
	defer root.Close()
	clones, err := s.cloneSlot(e.Slot)
	if err != nil {
		return err
	}
	files := append([]*os.File{root}, clones...)
	defer closeFiles(clones)
	if err := remountIn(st.InitPid, files); err != nil {
		return err
	}
	s.logf("proc: container %s has this session's files again", e.ID)
	return nil
}

// served says whether the container of init pid has this session's files
// mounted (its first file tells: repairOne replaces them all). A file of
// a dead session has that session's device, or fails with ENOTCONN; the
// kernel's attributes are asked, not the server.
func (s *Service) served(pid int) bool {
	s.mountMu.Lock()
	major, minor := s.devMajor, s.devMinor
	s.mountMu.Unlock()
	var st unix.Statx_t
	path := fmt.Sprintf("/proc/%d/root/%s", pid, procfs.Files[0])
	err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_DONT_SYNC, 0, &st)
	return err == nil && (major != 0 || minor != 0) && st.Dev_major == major && st.Dev_minor == minor
}

// remountIn runs the helper in init pid's mount namespace with the root
// and the new mounts (files[0], files[1:]) and waits for it.
func remountIn(pid int, files []*os.File) error {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socketpair: %w", err)
	}
	defer unix.Close(pair[0])
	theirs := os.NewFile(uintptr(pair[1]), "sync")
	var stderr bytes.Buffer
	cmd := exec.Command("/proc/self/exe", append(RemountArgs, procfs.Files...)...)
	cmd.Args[0] = "lkc"
	cmd.Env = append(os.Environ(), nsenter.SyncEnv+"=3")
	cmd.ExtraFiles = append([]*os.File{theirs}, files...)
	cmd.Stderr = &stderr
	err = cmd.Start()
	theirs.Close()
	if err != nil {
		return fmt.Errorf("starting the remount helper: %w", err)
	}
	req := nsenter.Request{Join: []nsenter.Join{{Flag: unix.CLONE_NEWNS, Path: fmt.Sprintf("/proc/%d/ns/mnt", pid)}}}
	if err := nsenter.Send(pair[0], req); err == nil {
		_, err = nsenter.Await(pair[0], cmd.Process.Pid, nil)
	}
	if werr := cmd.Wait(); werr != nil || err != nil {
		return fmt.Errorf("remount helper in the mount namespace of %d: %v %v: %s", pid, err, werr, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// Remount is the helper's work, in the container's mount namespace: each
// dead bind mount at dests[i] (relative to root) is lazily unmounted and
// mounts[i] moved onto its path.
func Remount(root *os.File, dests []string, mounts []*os.File) error {
	if len(dests) != len(mounts) {
		return fmt.Errorf("remount: %d paths for %d mounts", len(dests), len(mounts))
	}
	if err := unix.Fchdir(int(root.Fd())); err != nil {
		return fmt.Errorf("fchdir to the container's root: %w", err)
	}
	for i, d := range dests {
		if err := unix.Unmount(d, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
			return fmt.Errorf("unmounting the dead %s: %w", d, err)
		}
		if err := unix.MoveMount(int(mounts[i].Fd()), "", unix.AT_FDCWD, d, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("move_mount onto %s: %w", d, err)
		}
	}
	return nil
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}
