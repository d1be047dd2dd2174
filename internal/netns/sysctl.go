package netns

import (
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// The sysctls carried are those CRIU saves: every value of the per-device
// configuration directories of IPv4 and IPv6, for "all", "default" and each
// link. A read costs ~5 µs (open, read, close): the ~290 values of a
// namespace with a loopback and a veth take ~1.5 ms, as they do in CRIU.

const sysNet = "/proc/sys/net"

// confDirs are the directories under /proc/sys/net to save, in the order a
// restore writes them: "all" before "default" before the links, because a
// value written to "all" can spread to the others.
func confDirs(links []Link) []string {
	var dirs []string
	for _, dev := range append([]string{"all", "default"}, linkNames(links)...) {
		dirs = append(dirs, "ipv4/conf/"+dev, "ipv6/conf/"+dev)
	}
	return dirs
}

func linkNames(links []Link) []string {
	var names []string
	for _, l := range links {
		names = append(names, l.Name)
	}
	return names
}

// readSysctls reads every value in dirs, which must be those of the
// calling thread's network namespace. A family the kernel lacks (IPv6
// disabled) has no directory and is skipped, as is a value that cannot be
// read (stable_secret before it is set).
func readSysctls(dirs []string) ([]Sysctl, error) {
	var out []Sysctl
	for _, dir := range dirs {
		f, err := os.Open(path.Join(sysNet, dir))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading sysctls: %w", err)
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading sysctls in %s: %w", dir, err)
		}
		sortForWrite(names)
		for _, n := range names {
			key := dir + "/" + n
			if v, ok := readSysctl(key); ok {
				out = append(out, Sysctl{Key: key, Value: v})
			}
		}
	}
	return out, nil
}

// sortForWrite orders a directory's names as a restore must write them:
// "forwarding" first, since writing it resets "accept_redirects" (IPv4),
// which goes last.
func sortForWrite(names []string) {
	rank := func(n string) int {
		switch n {
		case "forwarding":
			return 0
		case "accept_redirects":
			return 2
		}
		return 1
	}
	sort.Slice(names, func(i, j int) bool {
		ri, rj := rank(names[i]), rank(names[j])
		if ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
}

// readSysctl reads one value; a read-only one (mc_forwarding) is not a
// setting and is skipped too.
func readSysctl(key string) (string, bool) {
	fd, err := unix.Open(path.Join(sysNet, key), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&0o200 == 0 {
		return "", false
	}
	var buf [256]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil || n == len(buf) {
		return "", false
	}
	return strings.TrimSuffix(string(buf[:n]), "\n"), true
}

func writeSysctl(key, value string) error {
	fd, err := unix.Open(path.Join(sysNet, key), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sysctl net/%s: %w", key, err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(value)); err != nil {
		return fmt.Errorf("sysctl net/%s = %q: %w", key, value, err)
	}
	return nil
}

// alwaysWritten are values a restore writes even when they look right
// already: forwarding and accept_redirects change each other and the
// same values of other directories, and a link's IPv6 mtu follows its MTU.
func alwaysWritten(key string) bool {
	switch path.Base(key) {
	case "forwarding", "accept_redirects":
		return true
	case "mtu":
		return strings.HasPrefix(key, "ipv6/")
	}
	return false
}

// sysctlDir splits "ipv4/conf/eth0/forwarding" into "ipv4/conf/eth0"
// and "forwarding".
func sysctlDir(key string) (dir, name string) {
	return path.Dir(key), path.Base(key)
}

// applySysctls writes saved values into the calling thread's namespace,
// skipping those it already has. base holds what the namespace had when
// it was made, read before any write, for "all", "default" and the
// loopback; a veth is created after "default" is written, so it starts
// with the saved default values.
func applySysctls(saved []Sysctl, base map[string]string, veths map[string]bool) error {
	savedByKey := make(map[string]string, len(saved))
	for _, s := range saved {
		savedByKey[s.Key] = s.Value
	}
	for _, s := range saved {
		dir, name := sysctlDir(s.Key)
		dev := path.Base(dir)
		have, known := base[s.Key]
		if veths[dev] {
			have, known = savedByKey[path.Dir(dir)+"/default/"+name]
		}
		if known && have == s.Value && !alwaysWritten(s.Key) {
			continue
		}
		if err := writeSysctl(s.Key, s.Value); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // a value this kernel does not have
			}
			return err
		}
	}
	return nil
}
