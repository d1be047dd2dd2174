package evacuate

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// lockComment names the rule that locks a network namespace during a
// restore --all, so the unlock removes that rule and no other.
const lockComment = "lkc-restore-all-lock"

// joinedNetns returns the network namespaces (by path) that the dumped
// containers of m joined, according to the configs kept with their images.
func joinedNetns(m *Manifest, dir string) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range m.Containers {
		if e.Status != StatusDumped {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.ID, "config.json"))
		if err != nil {
			continue
		}
		var s struct {
			Linux *struct {
				Namespaces []struct{ Type, Path string } `json:"namespaces"`
			} `json:"linux"`
		}
		if json.Unmarshal(data, &s) != nil || s.Linux == nil {
			continue
		}
		for _, ns := range s.Linux.Namespaces {
			if ns.Type == "network" && ns.Path != "" && !seen[ns.Path] {
				seen[ns.Path] = true
				out = append(out, ns.Path)
			}
		}
	}
	return out
}

// lockNetns drops every packet that enters the network namespaces at
// paths (iptables and ip6tables, INPUT, first rule) until the returned
// unlock runs. Two restored containers holding the two ends of a TCP
// connection come back one after the other: the first one's socket
// leaves repair mode and sends a window probe, which would meet no socket
// yet and be answered with a reset that ends the connection. After a
// reboot nothing else holds them off: the lock CRIU left at the dump is
// gone with the namespace. Dropped, the probe is resent once both ends
// exist. The host's own namespace is never locked (it would cut the host
// off for the whole restore), nor lkc's own: that is reported to warn.
func lockNetns(paths []string, warn func(error)) (unlock func()) {
	var undo []func()
	for _, p := range paths {
		if isHostNetns(p) {
			warn(fmt.Errorf("not locking the host's network namespace %s during the restore: TCP connections between restored containers there may be reset", p))
			continue
		}
		for _, ipt := range []string{"iptables", "ip6tables"} {
			clearStaleLocks(p, ipt, warn)
			if err := iptables(p, ipt, "-I", "INPUT", "1"); err != nil {
				warn(fmt.Errorf("locking the network namespace %s: %w", p, err))
				continue
			}
			undo = append(undo, func() {
				if err := iptables(p, ipt, "-D", "INPUT"); err != nil {
					warn(fmt.Errorf("unlocking the network namespace %s: %w", p, err))
				}
			})
		}
	}
	return func() {
		for _, u := range undo {
			u()
		}
	}
}

// maxStaleLocks bounds the removal of stale lock rules: one per
// interrupted restore --all, a handful at most.
const maxStaleLocks = 64

// clearStaleLocks removes the lock rules a restore --all that died before
// its unlock (SIGKILL, a crash, Ctrl-C) left in the namespace at path,
// which would otherwise drop its packets for good; each delete removes
// one, until none is left.
func clearStaleLocks(path, ipt string, warn func(error)) {
	n := 0
	for n < maxStaleLocks && iptables(path, ipt, "-D", "INPUT") == nil {
		n++
	}
	if n > 0 {
		warn(fmt.Errorf("removed %d %s lock rules an interrupted restore --all left in the network namespace %s", n, ipt, path))
	}
}

// iptables adds or deletes the lock rule in the namespace at path.
func iptables(path, cmd string, op ...string) error {
	args := append([]string{"--net=" + path, cmd, "-w"}, op...)
	args = append(args, "-m", "comment", "--comment", lockComment, "-j", "DROP")
	out, err := exec.Command("nsenter", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", cmd, strings.Join(op, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// isHostNetns says whether path is the network namespace of PID 1 or
// of lkc itself (which runs in the host's, where PID 1 is out of sight).
func isHostNetns(path string) bool {
	var a unix.Stat_t
	if unix.Stat(path, &a) != nil {
		return false
	}
	for _, host := range []string{"/proc/1/ns/net", "/proc/self/ns/net"} {
		var b unix.Stat_t
		if unix.Stat(host, &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino {
			return true
		}
	}
	return false
}
