package procview

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/procfs"
	"github.com/lkc-containers/lkc/internal/scm"
)

// CloneArgs start the helper that clones a slot's files for a repair
// (after the program name); the slot's number and the files' paths
// follow. It runs in the daemon's mount namespace, finds the view's root
// on fd 4 and sends the clones, in the order of the paths, in one message
// on fd 3. A process of its own, as the poll helper (PollArgs) is: the
// clones' look-ups are requests to the worker's own server, and a thread
// waiting for one sleeps uninterruptibly once a reader has taken it, so
// a worker SIGKILLed then could not exit; its holder, waiting for that
// exit, would start no successor, and the session would answer nobody.
// The helper, so caught, sleeps until the successor's FUSE_NOTIFY_RESEND
// has its request answered, then dies on the closed socket.
var CloneArgs = []string{"daemon", "--clone"}

// cloneSlot returns detached bind mounts of slot n's files (procfs.Files,
// in order), cloned by the helper (CloneArgs) through the view's root.
func (s *Service) cloneSlot(n int) ([]*os.File, error) {
	root, err := s.viewRoot()
	if err != nil {
		return nil, err
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	defer unix.Close(pair[0])
	theirs := os.NewFile(uintptr(pair[1]), "clones")
	var stderr bytes.Buffer
	cmd := exec.Command("/proc/self/exe", append(append(CloneArgs, strconv.Itoa(n)), procfs.Files...)...)
	cmd.Args[0] = "lkc"
	cmd.ExtraFiles = []*os.File{theirs, root}
	cmd.Stderr = &stderr
	err = cmd.Start()
	theirs.Close()
	root.Close()
	if err != nil {
		return nil, fmt.Errorf("starting the clone helper: %w", err)
	}
	files, err := recvFiles(pair[0], procfs.Files)
	if werr := cmd.Wait(); werr != nil || err != nil {
		closeFiles(files)
		return nil, fmt.Errorf("clone helper of slot %d: %v %v: %s", n, err, werr, bytes.TrimSpace(stderr.Bytes()))
	}
	return files, nil
}

// viewRoot returns a duplicate of the view's root, opened without a
// look-up (start).
func (s *Service) viewRoot() (*os.File, error) {
	s.mountMu.Lock()
	defer s.mountMu.Unlock()
	if s.root == nil {
		return nil, fmt.Errorf("the root of %s is not open", s.dir)
	}
	fd, err := unix.FcntlInt(s.root.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup of the root of %s: %w", s.dir, err)
	}
	return os.NewFile(uintptr(fd), s.dir), nil
}

// recvFiles receives one message carrying an fd for each of names.
func recvFiles(sock int, names []string) ([]*os.File, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4*len(names)))
	var n, oobn int
	var err error
	for {
		n, oobn, _, _, err = unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("receiving the clones: %w", err)
	}
	fds, err := scm.Rights(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("the clones' message: %w", err)
	}
	if n == 0 || len(fds) != len(names) {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("%d clones received for %d files", len(fds), len(names))
	}
	files := make([]*os.File, len(fds))
	for i, fd := range fds {
		files[i] = os.NewFile(uintptr(fd), names[i])
	}
	return files, nil
}

// CloneFiles is the clone helper's work, in the daemon's mount namespace:
// it clones each of files under directory slot of root (the view's root)
// and sends the clones on sock, in one message.
func CloneFiles(sock, root *os.File, slot string, files []string) error {
	fds := make([]int, 0, len(files))
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, f := range files {
		fd, err := cloneFile(int(root.Fd()), slot+"/"+f)
		if err != nil {
			return err
		}
		fds = append(fds, fd)
	}
	if err := unix.Sendmsg(int(sock.Fd()), []byte{0}, unix.UnixRights(fds...), nil, unix.MSG_NOSIGNAL); err != nil {
		return fmt.Errorf("sending the clones: %w", err)
	}
	return nil
}

// cloneFile returns a detached bind mount of path (relative to dir) with
// the flags of the container's bind mounts (read-only, nosuid, nodev,
// noexec).
func cloneFile(dir int, path string) (int, error) {
	fd, err := unix.OpenTree(dir, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("open_tree %s: %w", path, err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("mount_setattr %s: %w", path, err)
	}
	return fd, nil
}
