package spec

import (
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// Convert validates s, the config of the bundle at bundle (an absolute path),
// and turns it into the config of container id. It checks everything that can
// be checked before anything is created, so a refused config leaves nothing.
func Convert(s *specs.Spec, id, bundle string) (*config.Config, error) {
	if err := checkVersion(s.Version); err != nil {
		return nil, err
	}
	if s.Root == nil || s.Root.Path == "" {
		return nil, invalid("root.path is missing")
	}
	if s.Linux == nil {
		return nil, invalid("linux section is missing")
	}
	c := &config.Config{
		OCIVersion:  s.Version,
		ID:          id,
		Bundle:      bundle,
		Rootfs:      s.Root.Path,
		Readonly:    s.Root.Readonly,
		Hostname:    s.Hostname,
		Domainname:  s.Domainname,
		Annotations: s.Annotations,
	}
	if !filepath.IsAbs(c.Rootfs) {
		c.Rootfs = filepath.Join(bundle, c.Rootfs)
	}
	if err := checkRootfs(c.Rootfs); err != nil {
		return nil, err
	}
	steps := []func(*specs.Spec, *config.Config) error{
		convertProcess, convertNamespaces, convertMounts, convertLinuxFS,
		convertCgroup, convertSysctl, convertHooks, convertSeccomp,
	}
	for _, step := range steps {
		if err := step(s, c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func checkRootfs(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return invalid("root.path %s: %v", path, err)
	}
	if !fi.IsDir() {
		return invalid("root.path %s is not a directory", path)
	}
	return nil
}

func convertLinuxFS(s *specs.Spec, c *config.Config) error {
	l := s.Linux
	c.MountLabel = l.MountLabel
	c.MaskedPaths = l.MaskedPaths
	c.ReadonlyPaths = l.ReadonlyPaths
	for _, p := range append(append([]string(nil), l.MaskedPaths...), l.ReadonlyPaths...) {
		if !filepath.IsAbs(p) {
			return invalid("linux.maskedPaths/readonlyPaths: %q is not an absolute path", p)
		}
	}
	switch l.RootfsPropagation {
	case "":
	default:
		p, ok := propagationFlags[l.RootfsPropagation]
		if !ok {
			return invalid("linux.rootfsPropagation: unknown propagation %q", l.RootfsPropagation)
		}
		c.RootPropagation = p
	}
	if l.Personality != nil {
		p, err := personality(l.Personality)
		if err != nil {
			return err
		}
		c.Personality = &p
	}
	for i, d := range l.Devices {
		dev, err := convertDevice(i, d)
		if err != nil {
			return err
		}
		c.Devices = append(c.Devices, dev)
	}
	return nil
}

func personality(p *specs.LinuxPersonality) (uint32, error) {
	var v uint32
	switch p.Domain {
	case specs.PerLinux:
		v = 0x0000
	case specs.PerLinux32:
		v = 0x0008
	default:
		return 0, invalid("linux.personality.domain %q is not LINUX or LINUX32", p.Domain)
	}
	if len(p.Flags) > 0 {
		return 0, invalid("linux.personality.flags are not supported")
	}
	return v, nil
}

func convertDevice(i int, d specs.LinuxDevice) (config.Device, error) {
	if !filepath.IsAbs(d.Path) {
		return config.Device{}, invalid("linux.devices[%d].path %q is not absolute", i, d.Path)
	}
	dev := config.Device{Path: d.Path, Major: d.Major, Minor: d.Minor, FileMode: 0o666}
	switch d.Type {
	case "c", "u":
		dev.Type = 'c'
	case "b":
		dev.Type = 'b'
	case "p":
		dev.Type = 'p'
	default:
		return dev, invalid("linux.devices[%d] %s: unknown type %q", i, d.Path, d.Type)
	}
	if d.FileMode != nil {
		dev.FileMode = uint32(*d.FileMode) & 0o7777
	}
	if d.UID != nil {
		dev.UID = *d.UID
	}
	if d.GID != nil {
		dev.GID = *d.GID
	}
	return dev, nil
}

func convertMounts(s *specs.Spec, c *config.Config) error {
	for i, m := range s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return invalid("mounts[%d]: destination %q is not an absolute path", i, m.Destination)
		}
		flags, prop, data := parseMountOptions(m.Options)
		typ := m.Type
		if typ == "bind" {
			flags |= unix.MS_BIND
		}
		if flags&unix.MS_BIND != 0 {
			typ = "bind"
			src := m.Source
			if !filepath.IsAbs(src) {
				src = filepath.Join(c.Bundle, src)
			}
			if _, err := os.Stat(src); err != nil {
				return invalid("mounts[%d] %s: bind source: %v", i, m.Destination, err)
			}
			m.Source = src
		} else if typ == "" {
			return invalid("mounts[%d] %s: type is missing", i, m.Destination)
		}
		if labeled(typ) {
			data = config.WithMountLabel(data, s.Linux.MountLabel)
		}
		idmap, err := convertIDMapping(i, m, typ, c)
		if err != nil {
			return err
		}
		set, clr := recursiveAttrsOf(m.Options)
		c.Mounts = append(c.Mounts, config.Mount{
			Source: m.Source, Destination: filepath.Clean(m.Destination), Type: typ,
			Flags: flags, Propagation: prop, Data: data, CopyUp: typ == "tmpfs" && copyUp(m.Options),
			RecAttrSet: set, RecAttrClr: clr, IDMapping: idmap,
		})
	}
	return nil
}

// labeled says whether a mount of type typ takes linux.mountLabel, as in
// runc: not binds (they keep their source's labels), nor proc, sysfs and
// cgroup filesystems (labeled by the policy, not by a mount option).
func labeled(typ string) bool {
	switch typ {
	case "bind", "proc", "sysfs", "cgroup", "cgroup2":
		return false
	}
	return true
}

func convertSysctl(s *specs.Spec, c *config.Config) error {
	for k := range s.Linux.Sysctl {
		if err := checkSysctl(k, c); err != nil {
			return err
		}
	}
	c.Sysctl = s.Linux.Sysctl
	return nil
}

func checkSysctl(key string, c *config.Config) error {
	need := ""
	switch {
	case strings.HasPrefix(key, "net."):
		need = "network"
	case strings.HasPrefix(key, "fs.mqueue.") || key == "kernel.msgmax" || key == "kernel.msgmnb" ||
		key == "kernel.msgmni" || key == "kernel.sem" || key == "kernel.shmall" ||
		key == "kernel.shmmax" || key == "kernel.shmmni" || key == "kernel.shm_rmid_forced":
		need = "ipc"
	case key == "kernel.hostname" || key == "kernel.domainname":
		need = "uts"
	default:
		return invalid("linux.sysctl %q is not namespaced: it would change the host", key)
	}
	if !c.HasNamespace(need) {
		return invalid("linux.sysctl %q needs a %s namespace", key, need)
	}
	return nil
}
