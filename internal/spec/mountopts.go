package spec

import (
	"strings"

	"golang.org/x/sys/unix"
)

// mountFlag describes one mount option: set (or clear) a flag.
type mountFlag struct {
	clear bool
	flag  uintptr
}

var mountFlags = map[string]mountFlag{
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"bind":          {false, unix.MS_BIND},
	"defaults":      {false, 0},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"mand":          {false, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
	"relatime":      {false, unix.MS_RELATIME},
	"remount":       {false, unix.MS_REMOUNT},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"silent":        {false, unix.MS_SILENT},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"sync":          {false, unix.MS_SYNCHRONOUS},
}

var propagationFlags = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// recursiveAttrs are runc's recursive mount options ("rro" and friends):
// mount_setattr(2) attributes applied with AT_RECURSIVE to the new mount
// and every mount beneath it, which a remount cannot do.
var recursiveAttrs = map[string]mountFlag{
	"rro":          {false, unix.MOUNT_ATTR_RDONLY},
	"rrw":          {true, unix.MOUNT_ATTR_RDONLY},
	"rnosuid":      {false, unix.MOUNT_ATTR_NOSUID},
	"rsuid":        {true, unix.MOUNT_ATTR_NOSUID},
	"rnodev":       {false, unix.MOUNT_ATTR_NODEV},
	"rdev":         {true, unix.MOUNT_ATTR_NODEV},
	"rnoexec":      {false, unix.MOUNT_ATTR_NOEXEC},
	"rexec":        {true, unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime":  {false, unix.MOUNT_ATTR_NODIRATIME},
	"rdiratime":    {true, unix.MOUNT_ATTR_NODIRATIME},
	"rnosymfollow": {false, unix.MOUNT_ATTR_NOSYMFOLLOW},
	"rsymfollow":   {true, unix.MOUNT_ATTR_NOSYMFOLLOW},
	// The access-time mode is one value: setting one clears the others.
	"rrelatime":    {false, unix.MOUNT_ATTR_RELATIME},
	"rnoatime":     {false, unix.MOUNT_ATTR_NOATIME},
	"rstrictatime": {false, unix.MOUNT_ATTR_STRICTATIME},
}

var atimeAttrs = map[string]bool{"rrelatime": true, "rnoatime": true, "rstrictatime": true}

// recursiveAttrsOf returns the mount_setattr attributes options set and
// clear (the last of two contrary options wins).
func recursiveAttrsOf(options []string) (set, clr uint64) {
	for _, o := range options {
		a, ok := recursiveAttrs[o]
		switch {
		case !ok:
		case atimeAttrs[o]:
			set = set&^unix.MOUNT_ATTR__ATIME | uint64(a.flag)
			clr |= unix.MOUNT_ATTR__ATIME
		case a.clear:
			set &^= uint64(a.flag)
			clr |= uint64(a.flag)
		default:
			set |= uint64(a.flag)
			clr &^= uint64(a.flag)
		}
	}
	return set, clr
}

// copyUpOptions are runc's tmpfs extensions, not for the kernel: whether
// the new tmpfs gets the contents of the directory it covers (Podman asks
// for it on --tmpfs and --read-only tmpfs mounts).
var copyUpOptions = map[string]bool{"tmpcopyup": true, "notmpcopyup": false}

// copyUp reports whether options ask for a tmpfs copy-up (the last wins).
func copyUp(options []string) bool {
	on := false
	for _, o := range options {
		if v, ok := copyUpOptions[o]; ok {
			on = v
		}
	}
	return on
}

// parseMountOptions splits fstab-style options into mount(2) flags,
// propagation changes and the data string handed to the filesystem.
func parseMountOptions(options []string) (flags uintptr, propagation []uintptr, data string) {
	var extra []string
	for _, o := range options {
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		if p, ok := propagationFlags[o]; ok {
			propagation = append(propagation, p)
			continue
		}
		if _, ok := copyUpOptions[o]; ok {
			continue
		}
		if _, ok := idmapOptions[o]; ok {
			continue
		}
		if _, ok := recursiveAttrs[o]; ok {
			continue
		}
		extra = append(extra, o)
	}
	return flags, propagation, strings.Join(extra, ",")
}

// MountOptionNames lists the options lkc understands, for `features`.
func MountOptionNames() []string {
	names := make([]string, 0, len(mountFlags)+len(propagationFlags))
	for n := range mountFlags {
		names = append(names, n)
	}
	for n := range propagationFlags {
		names = append(names, n)
	}
	for n := range copyUpOptions {
		names = append(names, n)
	}
	for n := range recursiveAttrs {
		names = append(names, n)
	}
	for n := range idmapOptions {
		names = append(names, n)
	}
	return names
}
