package cr

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/checkpoint"
	"github.com/lkc-containers/lkc/internal/cleanup"
	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/mount"
)

// A restore of a container with a user namespace of its own. CRIU makes
// the namespace, and the tasks it restores in it run as the namespace's
// root: on the host, the uid and gid the maps give container id 0 (the
// mapped root), with capabilities over that namespace only, so nothing of
// root's that is closed to other users is open to them. What they open
// must be the mapped root's to open, and nothing is opened to anyone else:
//   - the images, which they open by name through the directory's fd CRIU
//     hands them, and those of a pre-dump chain, through its parent
//     links: for the time of the restore, each image and each directory
//     of images get an access ACL entry for the mapped root's uid alone,
//     and the directories the links pass that it may not search an entry
//     letting it search them (grantImages); the modes, and so every other
//     user's access, stay.
//   - the external mounts' sources, which they bind by path: the
//     directory of the restore's own sources (mount.StagingTmpfs, in the
//     state directory, which any user may search but not list) belongs to
//     the mapped root, mode 0700, so no other user enters it; a source
//     behind a directory the mapped root may not search (the daemon's
//     /proc view files, mode 0700) is bound into it first, and CRIU binds
//     that (stageForUserNS).
//   - a regular file the container had as stdio, which CRIU reopens
//     through /proc: lkc hands CRIU the file opened through an idmapped
//     clone of its mount, rooted at the file alone, through which the host
//     root's file is the mapped root's (idmapStdio).

// mappedRoot is the host uid and gid of the root of cfg's user namespace,
// when the restore makes one.
func mappedRoot(cfg *config.Config) (uid, gid int, ok bool, err error) {
	if !cfg.NewNamespace("user") {
		return 0, 0, false, nil
	}
	u, uok := config.HostID(cfg.UIDMappings, 0)
	g, gok := config.HostID(cfg.GIDMappings, 0)
	if !uok || !gok {
		return 0, 0, false, fmt.Errorf("%w: the user namespace's maps leave out uid or gid 0, which CRIU restores the tasks as", ErrNotSupported)
	}
	return int(u), int(g), true, nil
}

// parentLink is the link CRIU leaves in the images of a dump on top of a
// pre-dump, to the pre-dump's images, and follows on restore.
const parentLink = "parent"

// grantImages lets uid read the images in d's images directory and in
// the pre-dump images its parent links lead to, and search each directory
// those links' resolution passes that uid:gid may not search by its mode,
// for the time of the restore, through an entry for uid alone in each
// one's access ACL, and returns what puts the ACLs and modes back. The
// restored root task reads images both before it takes its credentials
// in the new user namespace (as the host root, the files' owner) and
// after (as uid): an ACL serves both, where an idmapped view would serve
// only the second. Each grant is journaled in stateDir and marked on the
// file first (mount.MarkGrant), so that those of a killed lkc are taken
// back by the container's delete or by the next restore of the images.
func grantImages(stateDir string, d *imageDirs, uid, gid int) (func(), error) {
	g := &granter{stateDir: stateDir, uid: uid, gid: gid, done: map[string]bool{}}
	for dir := d.imagePath; dir != "" && !g.done[dir]; {
		err := g.images(dir)
		if err == nil {
			dir, err = g.parent(dir)
		}
		if err != nil {
			g.undo.Run()
			return nil, fmt.Errorf("letting the user namespace's root read the images: %w", err)
		}
	}
	return func() {
		g.undo.Run()
		os.Remove(filepath.Join(stateDir, mount.StagingGrants))
	}, nil
}

// granter grants the images of one restore.
type granter struct {
	stateDir string
	uid, gid int
	done     map[string]bool
	undo     cleanup.Stack
}

// images grants read on the images directory dir and its files.
func (g *granter) images(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("listing the images: %w", err)
	}
	if err := g.grant(dir, 5); err != nil {
		return err
	}
	for _, e := range entries {
		if err := g.grant(filepath.Join(dir, e.Name()), 5); err != nil {
			return err
		}
	}
	return nil
}

// parent grants search on the directories in which the resolution of
// dir's parent link looks a name up, where the mapped root may not search
// them, and returns the directory it leads to; "" without a link. The
// link is resolved by name, as the kernel resolves it from dir: a link
// through another symbolic link is not followed.
func (g *granter) parent(dir string) (string, error) {
	target, err := os.Readlink(filepath.Join(dir, parentLink))
	if os.IsNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("the pre-dump images: %w", err)
	}
	cur := dir
	if filepath.IsAbs(target) {
		cur = "/"
	}
	for _, c := range strings.Split(target, "/") {
		if c == "" || c == "." {
			continue
		}
		if !searchable(cur, g.uid, g.gid) {
			if err := g.grant(cur, 1); err != nil {
				return "", err
			}
		}
		if c == ".." {
			cur = filepath.Dir(cur)
		} else {
			cur = filepath.Join(cur, c)
		}
	}
	return cur, nil
}

// grant adds to path's access ACL an entry letting the mapped root read
// it (a regular file) or have dirPerm on it (a directory), leaving every
// other entry's permissions as they were, and pushes what puts the ACL
// and the mode back; nothing for what is neither, is gone, or was
// granted already. A grant a killed lkc left is taken back first; an ACL lkc did
// not make is refused.
func (g *granter) grant(path string, dirPerm uint16) error {
	if g.done[path] {
		return nil
	}
	if _, err := mount.RevertStaleGrant(path); err != nil {
		return err
	}
	var st unix.Stat_t
	switch err := unix.Lstat(path, &st); err {
	case nil:
	case unix.ENOENT:
		return nil // gone since it was listed (a killed CRIU's cgroup yard)
	default:
		return &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	perm := uint16(4)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		perm = dirPerm
	case unix.S_IFREG:
	default:
		return nil
	}
	switch _, err := unix.Getxattr(path, mount.ACLAccessXattr, nil); {
	case err == nil:
		return fmt.Errorf("%s: %w: it has an access ACL already", path, ErrNotSupported)
	case err != unix.ENODATA:
		return &os.PathError{Op: "getxattr " + mount.ACLAccessXattr, Path: path, Err: err}
	}
	mode := st.Mode & 0o7777
	if err := mount.MarkGrant(g.stateDir, path, mode); err != nil {
		return err
	}
	g.undo.Add(func() { mount.RevertGrant(path, mode) })
	if err := unix.Setxattr(path, mount.ACLAccessXattr, aclWithUser(mode, g.uid, perm), 0); err != nil {
		return &os.PathError{Op: "setxattr " + mount.ACLAccessXattr, Path: path, Err: err}
	}
	g.done[path] = true
	return nil
}

// aclWithUser encodes the access ACL equivalent to mode with one more
// entry, for uid with perm, and a mask that lets that entry through and
// leaves the group's permissions as mode has them (the kernel's
// posix_acl_xattr format, version 2).
func aclWithUser(mode uint32, uid int, perm uint16) []byte {
	const (
		userObj, user, groupObj, mask, other = 0x01, 0x02, 0x04, 0x10, 0x20
		undefinedID                          = 0xffffffff
	)
	group := uint16(mode>>3) & 7
	entries := []struct {
		tag, perm uint16
		id        uint32
	}{
		{userObj, uint16(mode>>6) & 7, undefinedID},
		{user, perm, uint32(uid)},
		{groupObj, group, undefinedID},
		{mask, group | perm, undefinedID},
		{other, uint16(mode) & 7, undefinedID},
	}
	buf := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		buf = binary.LittleEndian.AppendUint16(buf, e.tag)
		buf = binary.LittleEndian.AppendUint16(buf, e.perm)
		buf = binary.LittleEndian.AppendUint32(buf, e.id)
	}
	return buf
}

// stageForUserNS gives the restore's sources directory to the mapped root
// uid:gid, and binds into it each source of ext that the mapped root could
// not reach, replacing it in ext with its bind.
func stageForUserNS(stateDir string, ext []checkpoint.ExtMount, uid, gid int) error {
	dir := filepath.Join(stateDir, mount.StagingTmpfs)
	if err := os.Lchown(dir, uid, gid); err != nil {
		return fmt.Errorf("giving the restore's mount sources to the user namespace's root: %w", err)
	}
	for i := range ext {
		if reachable(ext[i].Val, uid, gid) {
			continue
		}
		staged := filepath.Join(dir, "ext-"+strconv.Itoa(i))
		if err := bindSource(ext[i].Val, staged); err != nil {
			return fmt.Errorf("staging mount source %s for the user namespace: %w", ext[i].Val, err)
		}
		ext[i].Val = staged
	}
	return nil
}

// reachable says whether uid:gid (with no supplementary groups) may
// search every directory above path, by their mode bits.
func reachable(path string, uid, gid int) bool {
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		if !searchable(dir, uid, gid) {
			return false
		}
		if dir == "/" || dir == "." {
			return true
		}
	}
}

// searchable says whether uid:gid (with no supplementary groups) may
// search dir, by its mode bits.
func searchable(dir string, uid, gid int) bool {
	var st unix.Stat_t
	if unix.Stat(dir, &st) != nil {
		return false
	}
	bit := uint32(0o001)
	switch {
	case int(st.Uid) == uid:
		bit = 0o100
	case int(st.Gid) == gid:
		bit = 0o010
	}
	return st.Mode&bit != 0
}

// bindSource bind-mounts src, a file or a directory, with the mounts
// beneath it, on dst, which it makes.
func bindSource(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Stat(src, &st); err != nil {
		return &os.PathError{Op: "stat", Path: src, Err: err}
	}
	var err error
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err = os.Mkdir(dst, 0o700)
	} else {
		err = os.WriteFile(dst, nil, 0o600)
	}
	if err != nil {
		return err
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		os.Remove(dst)
		return &os.PathError{Op: "bind-mount on " + dst, Path: src, Err: err}
	}
	return nil
}

// idmapStdio replaces each of req's stdio files the images name as a
// regular file (inheritStdio) with the same file opened anew through an
// idmapped clone of its mount, rooted at the file itself: CRIU reopens
// such a file in the restored task, as the mapped root, which may not
// open the host root's file by itself. The clone reaches that file alone.
// A file whose mount cannot be idmapped is left as it is. The files
// opened are appended to opened, for the caller to close.
func idmapStdio(req *checkpoint.Request, cfg *config.Config, opened *[]*os.File) {
	var ns mount.UserNSes
	defer ns.Close()
	for _, inh := range req.Opts.InheritFd {
		f := req.Stdio[inh.Fd]
		if !strings.HasPrefix(inh.Key, "file[") || f == nil {
			continue
		}
		re, err := reopenIDMapped(f, cfg, &ns)
		if err != nil {
			continue
		}
		*opened = append(*opened, re)
		req.Stdio[inh.Fd] = re
	}
}

// reopenIDMapped opens f's file again, with f's flags, through an
// idmapped clone of its mount rooted at it.
func reopenIDMapped(f *os.File, cfg *config.Config, ns *mount.UserNSes) (*os.File, error) {
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		return nil, err
	}
	self := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	m := config.Mount{Source: self, Destination: self, Type: "bind", Flags: unix.MS_BIND,
		IDMapping: &config.MountIDMapping{UIDMappings: cfg.UIDMappings, GIDMappings: cfg.GIDMappings}}
	clone, err := mount.IDMapped(m, ns)
	if err != nil {
		return nil, err
	}
	defer clone.Close()
	flags &= unix.O_ACCMODE | unix.O_APPEND | unix.O_NONBLOCK
	return os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", clone.Fd()), flags|unix.O_CLOEXEC, 0)
}
