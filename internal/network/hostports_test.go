package network

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
)

// freePort is a TCP port nobody is bound to now.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// usePortsRoot points the notes at a directory of the test's.
func usePortsRoot(t *testing.T) {
	old := portsRoot
	portsRoot = t.TempDir()
	t.Cleanup(func() { portsRoot = old })
}

// stateDirWithRecord is a container's state directory with a network
// record, which makes its notes live.
func stateDirWithRecord(t *testing.T) string {
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, recordName), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestReservePorts(t *testing.T) {
	usePortsRoot(t)
	port := freePort(t)
	a, b := stateDirWithRecord(t), stateDirWithRecord(t)
	if err := reservePorts(a, []Port{{HostPort: port, Protocol: "tcp", HostIP: "127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    Port
		held bool
	}{
		{Port{HostPort: port, Protocol: "tcp"}, true},
		{Port{HostPort: port, Protocol: "tcp", HostIP: "0.0.0.0"}, true},
		{Port{HostPort: port, Protocol: "tcp", HostIP: "::ffff:127.0.0.1"}, true},
		{Port{HostPort: port, Protocol: "tcp", HostIP: "127.0.0.2"}, false},
		{Port{HostPort: port, Protocol: "tcp", HostIP: "::"}, false},
		{Port{HostPort: port, Protocol: "udp"}, false},
	} {
		err := reservePorts(b, []Port{c.p})
		if held := err != nil && strings.Contains(err.Error(), "published by another container ("+a+")"); held != c.held || (err != nil && !held) {
			t.Errorf("%+v: %v, want held %v", c.p, err, c.held)
		}
		releasePorts(b)
	}
	// The same container may note its ports again (a restore).
	if err := reservePorts(a, []Port{{HostPort: port, Protocol: "tcp", HostIP: "127.0.0.1"}}); err != nil {
		t.Errorf("again for the same container: %v", err)
	}
	// A note of a container whose record is gone is stale.
	os.Remove(filepath.Join(a, recordName))
	if err := reservePorts(b, []Port{{HostPort: port, Protocol: "tcp"}}); err != nil {
		t.Errorf("over a stale note: %v", err)
	}
	if err := releasePorts(b); err != nil {
		t.Fatal(err)
	}
	dir, _ := hostPortsDir()
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("notes left: %v", left)
	}
}

// TestReleasePortsOtherSpelling: a delete that names the state directory
// through another path (a symlinked root) releases the notes too.
func TestReleasePortsOtherSpelling(t *testing.T) {
	usePortsRoot(t)
	a := stateDirWithRecord(t)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	port := Port{HostPort: freePort(t), Protocol: "tcp"}
	if err := reservePorts(link, []Port{port}); err != nil {
		t.Fatal(err)
	}
	if err := reservePorts(a, []Port{port}); err != nil {
		t.Errorf("the same container through its real path: %v", err)
	}
	if err := releasePorts(a); err != nil {
		t.Fatal(err)
	}
	dir, _ := hostPortsDir()
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("notes left: %v", left)
	}
}

func TestReservePortsBoundOnHost(t *testing.T) {
	usePortsRoot(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	err = reservePorts(stateDirWithRecord(t), []Port{{HostPort: port, Protocol: "tcp"}})
	if err == nil || !strings.Contains(err.Error(), "is in use on the host") {
		t.Errorf("a port a listener holds: %v", err)
	}
	if err := reservePorts(stateDirWithRecord(t), []Port{{HostPort: port, Protocol: "tcp", HostIP: "127.0.0.2"}}); err != nil {
		t.Errorf("the port on another address: %v", err)
	}
}

// TestCheckPublished: a host address of a family the container got no
// address of is refused, as portmap would publish nothing there.
func TestCheckPublished(t *testing.T) {
	v4only := &current.Result{CNIVersion: current.ImplementedSpecVersion, IPs: []*current.IPConfig{
		{Address: net.IPNet{IP: net.ParseIP("10.77.0.5").To4(), Mask: net.CIDRMask(16, 32)}}}}
	for _, c := range []struct {
		host string
		want string
	}{
		{"", ""},
		{"0.0.0.0", ""},
		{"127.0.0.1", ""},
		{"::", "host address :: is IPv6, and the network gave the container no IPv6 address"},
		{"::1", "host address ::1 is IPv6"},
	} {
		err := checkPublished([]Port{{HostPort: 80, ContainerPort: 80, Protocol: "tcp", HostIP: c.host}}, v4only)
		if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("host address %q: %v, want %q", c.host, err, c.want)
		}
	}
}
