package mount

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/state"
)

// A restore into a user namespace (internal/cr) gives the images, and
// the directories on the way to a pre-dump chain's parents, one access
// ACL entry for the namespace's root while CRIU runs. A lkc killed then
// leaves them; what cleans them up must tell them from an ACL someone
// else set, and from those of a restore still running:
//   - each file lkc grants is first named in the state directory's
//     StagingGrants journal, so the container's delete finds it
//     (ReleaseStaging);
//   - each gets, before its ACL, a GrantXattr naming the lkc process that
//     set it (pid and start time) and the mode the file had; a trusted
//     xattr, which only the host's root may set or read. Once that
//     process is gone the grant is stale, and RevertStaleGrant takes it
//     back: the next restore of the same images does so for each file it
//     is about to grant.
//
// The grant is undone in the opposite order: the ACL, the mode, then the
// mark, so that a kill at any point leaves a mark for what is left.
const (
	// StagingGrants is the state directory's journal of granted paths,
	// one a line.
	StagingGrants = "criu-grants"
	// GrantXattr marks a file whose access ACL lkc set: "pid start mode".
	GrantXattr = "trusted.lkc.restore-grant"
	// ACLAccessXattr is the extended attribute holding a file's access
	// ACL.
	ACLAccessXattr = "system.posix_acl_access"
)

// ErrGrantInUse says a file's ACL entry belongs to a restore still
// running.
var ErrGrantInUse = errors.New("its ACL entry belongs to a restore still running")

// MarkGrant names path in stateDir's journal and marks it as granted by
// this process, mode being its mode before the grant.
func MarkGrant(stateDir, path string, mode uint32) error {
	start, err := state.StartTime(os.Getpid())
	if err != nil {
		return err
	}
	j, err := os.OpenFile(filepath.Join(stateDir, StagingGrants), os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	_, err = j.WriteString(path + "\n")
	if cerr := j.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	mark := fmt.Sprintf("%d %d %o", os.Getpid(), start, mode)
	if err := unix.Setxattr(path, GrantXattr, []byte(mark), 0); err != nil {
		return &os.PathError{Op: "setxattr " + GrantXattr, Path: path, Err: err}
	}
	return nil
}

// RevertGrant takes back lkc's ACL entry on path, giving it mode again,
// and then its mark.
func RevertGrant(path string, mode uint32) {
	unix.Removexattr(path, ACLAccessXattr)
	unix.Chmod(path, mode)
	unix.Removexattr(path, GrantXattr)
}

// RevertStaleGrant takes back the grant marked on path if the lkc that
// made it is gone, and says whether path had a mark. A mark of a running
// process is left, and ErrGrantInUse returned.
func RevertStaleGrant(path string) (bool, error) {
	buf := make([]byte, 64)
	n, err := unix.Getxattr(path, GrantXattr, buf)
	switch {
	case err == unix.ENODATA || err == unix.ENOENT || err == unix.EOPNOTSUPP:
		return false, nil
	case err != nil:
		return false, &os.PathError{Op: "getxattr " + GrantXattr, Path: path, Err: err}
	}
	f := strings.Fields(string(buf[:n]))
	if len(f) != 3 {
		return true, fmt.Errorf("%s: malformed %s %q", path, GrantXattr, buf[:n])
	}
	pid, err1 := strconv.Atoi(f[0])
	start, err2 := strconv.ParseUint(f[1], 10, 64)
	mode, err3 := strconv.ParseUint(f[2], 8, 32)
	if err := errors.Join(err1, err2, err3); err != nil {
		return true, fmt.Errorf("%s: malformed %s %q", path, GrantXattr, buf[:n])
	}
	if now, err := state.StartTime(pid); err == nil && now == start {
		return true, fmt.Errorf("%s: %w (lkc pid %d)", path, ErrGrantInUse, pid)
	}
	RevertGrant(path, uint32(mode))
	return true, nil
}

// releaseGrants takes back the stale grants stateDir's journal names, and
// removes the journal once none is left: a grant of a restore still
// running is its own to take back.
func releaseGrants(stateDir string) error {
	name := filepath.Join(stateDir, StagingGrants)
	j, err := os.Open(name)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer j.Close()
	var errs []error
	sc := bufio.NewScanner(j)
	for sc.Scan() {
		if _, err := RevertStaleGrant(sc.Text()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(append(errs, sc.Err())...); err != nil {
		return fmt.Errorf("taking back a restore's ACL entries: %w", err)
	}
	return os.Remove(name)
}
