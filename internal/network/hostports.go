package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"golang.org/x/sys/unix"
)

// portsRoot is where lkc notes the host ports its containers publish, a
// directory per network namespace of the host (ports are its), a file per
// port naming the container's state directory. portmap adds its DNAT
// rules without looking for others: of two containers publishing one
// port, the first would get every connection and the other silently
// none, and a process of the host listening on it would lose the
// connections from outside. Podman and Docker refuse both; so does lkc.
// On tmpfs: the notes end with a reboot, as the containers do. A variable
// for the unit tests.
var portsRoot = "/run/lkc-ports"

// hostPortsDir is portsRoot's directory for lkc's network namespace.
func hostPortsDir() (string, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		return "", &os.PathError{Op: "stat", Path: "/proc/self/ns/net", Err: err}
	}
	dir := filepath.Join(portsRoot, strconv.FormatUint(st.Ino, 10))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, nil
}

// reservePorts notes ports as published by the container in stateDir. It
// refuses a host port that another container publishes on an address
// that overlaps, or that a process of the host is bound to. A note whose
// container no longer has a network record (its state directory removed
// without a delete) is stale and goes.
func reservePorts(stateDir string, ports []Port) error {
	if len(ports) == 0 {
		return nil
	}
	dir, err := hostPortsDir()
	if err != nil {
		return fmt.Errorf("noting the published ports: %w", err)
	}
	return withLock(dir, func() error {
		for _, p := range ports {
			if err := checkHeld(dir, stateDir, p); err != nil {
				return err
			}
			if err := probeHostPort(p); err != nil {
				return err
			}
		}
		for _, p := range ports {
			if err := os.WriteFile(filepath.Join(dir, portNote(p)), []byte(stateDir), 0o600); err != nil {
				return fmt.Errorf("noting the published ports: %w", err)
			}
		}
		return nil
	})
}

// releasePorts removes the notes of the container in stateDir.
func releasePorts(stateDir string) error {
	dir, err := hostPortsDir()
	if err != nil {
		return err
	}
	return withLock(dir, func() error {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if owner, _ := os.ReadFile(filepath.Join(dir, e.Name())); sameDir(string(owner), stateDir) {
				if err := removeFile(filepath.Join(dir, e.Name())); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// checkPublished refuses a port whose host address is of a family the
// network gave the container no address of (res is its ADD result):
// portmap adds a rule only where the families match, so that port would
// not be published, and nothing would say so.
func checkPublished(ports []Port, res types.Result) error {
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		return err
	}
	has := map[bool]bool{} // by "is IPv4"
	for _, ip := range cur.IPs {
		has[ip.Address.IP.To4() != nil] = true
	}
	for _, p := range ports {
		if p.HostIP == "" {
			continue
		}
		if v4 := netip.MustParseAddr(p.HostIP).Is4(); !has[v4] {
			family := map[bool]string{true: "IPv4", false: "IPv6"}[v4]
			return fmt.Errorf("annotation %s: host address %s is %s, and the network gave the container no %s address", AnnotationPorts, p.HostIP, family, family)
		}
	}
	return nil
}

// sameDir says whether a and b name one directory, which another
// spelling of the root (/var/run/lkc for /run/lkc) names differently.
func sameDir(a, b string) bool {
	if a == b {
		return true
	}
	x, err := os.Stat(a)
	if err != nil {
		return false
	}
	y, err := os.Stat(b)
	return err == nil && os.SameFile(x, y)
}

// portNote is the file name of p's note: PROTO-PORT-HOSTIP ("any" when
// it has no host address).
func portNote(p Port) string {
	host := p.HostIP
	if host == "" {
		host = "any"
	}
	return fmt.Sprintf("%s-%d-%s", p.Protocol, p.HostPort, host)
}

// checkHeld refuses p when another container's live note holds its host
// port and protocol on an address that overlaps.
func checkHeld(dir, stateDir string, p Port) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	prefix := fmt.Sprintf("%s-%d-", p.Protocol, p.HostPort)
	for _, e := range entries {
		host, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		if host == "any" {
			host = ""
		}
		if _, err := netip.ParseAddr(host); host != "" && err != nil {
			continue
		}
		if !hostsOverlap(host, p.HostIP) {
			continue
		}
		note := filepath.Join(dir, e.Name())
		owner, err := os.ReadFile(note)
		if err != nil || sameDir(string(owner), stateDir) {
			continue
		}
		if _, err := os.Stat(filepath.Join(string(owner), recordName)); err != nil {
			os.Remove(note)
			continue
		}
		return fmt.Errorf("annotation %s: host port %d/%s is published by another container (%s)", AnnotationPorts, p.HostPort, p.Protocol, owner)
	}
	return nil
}

// probeHostPort refuses p when a process of the host is bound to its
// host port (a TCP listener; a UDP socket without SO_REUSEADDR). SCTP is
// not probed: opening an SCTP socket would load the kernel's module.
func probeHostPort(p Port) error {
	if p.Protocol == "sctp" {
		return nil
	}
	hosts := []string{p.HostIP}
	if p.HostIP == "" {
		hosts = []string{"0.0.0.0", "::"}
	}
	for _, h := range hosts {
		err := tryBind(netip.MustParseAddr(h), p.HostPort, p.Protocol == "udp")
		if errors.Is(err, unix.EADDRINUSE) {
			return fmt.Errorf("annotation %s: host port %d/%s is in use on the host (bind %s: %v)", AnnotationPorts, p.HostPort, p.Protocol, netip.AddrPortFrom(netip.MustParseAddr(h), uint16(p.HostPort)), err)
		}
	}
	return nil
}

// tryBind binds a socket to addr and port and closes it. SO_REUSEADDR
// keeps connections in TIME_WAIT from counting as a use; an IPv6 socket
// binds IPv6 alone. Errors other than EADDRINUSE (an address the host
// does not have, no IPv6) are not a use either.
func tryBind(addr netip.Addr, port int, udp bool) error {
	typ := unix.SOCK_STREAM
	if udp {
		typ = unix.SOCK_DGRAM
	}
	family := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Port: port, Addr: addr.As16()}
	if addr = addr.Unmap(); addr.Is4() {
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: port, Addr: addr.As4()}
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if family == unix.AF_INET6 {
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	}
	return unix.Bind(fd, sa)
}

// withLock runs fn holding dir's lock, which serializes the notes of
// concurrent creates and deletes.
func withLock(dir string, fn func() error) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "flock", Path: dir, Err: err}
	}
	return fn()
}
