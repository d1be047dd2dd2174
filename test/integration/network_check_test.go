package integration

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// TestNetworkStateCheck: `state --check` runs CNI CHECK of a container's
// networks: it passes on a container as ADD made it (addresses, a rate,
// also once the rate changed) and on one without networks, and fails in one
// line naming the network once the container's address is gone, printing
// no state.
func TestNetworkStateCheck(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	id := e.id()
	// No published port: portmap 1.1.1 (Debian 12) fails CHECK of a
	// dual-stack container's ports (containernetworking/plugins#819).
	b := e.bundle([]string{"sleep", "60"}, c.annotate("org.lkc.net-rate", "egress=10mbit"))
	e.mustLkc("run", "-d", "--bundle", b, id)
	e.mustLkc("state", "--check", id)
	e.mustLkc("update", "--net-rate", "egress=20mbit,ingress=5mbit", id)
	e.mustLkc("state", "--check", id)

	plain := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "60"}, nil), plain)
	e.mustLkc("state", "--check", plain)

	ip := e.addr(id)
	del := exec.Command("nsenter", "--net="+filepath.Join(e.root, id, "netns"), "ip", "addr", "del", ip+"/24", "dev", "eth0")
	if out, err := del.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v: %s", del, err, out)
	}
	r := e.lkc("state", "--check", id)
	e.checkOneLineFailure(r, `state: network `+c.name+`: .*`+ip, nil)
	if r.stdout != "" {
		t.Errorf("state printed after a failed check: %q", r.stdout)
	}
	e.mustLkc("delete", "-f", id)
	c.assertReleased(ip)
}

// TestNetworkStateCheckWithoutRate: `state --check` of a container on a
// network with the bandwidth plugin and no rate in force passes, before a
// rate is given, with one, and after it is taken away. The plugin's CHECK
// crashes without a rate (a nil pointer in containernetworking/plugins), so
// lkc leaves it out of CHECK then: its ADD did nothing to check.
func TestNetworkStateCheckWithoutRate(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "100"}, c.annotate()), id)
	e.mustLkc("state", "--check", id)
	e.mustLkc("update", "--net-rate", "egress=10mbit", id)
	e.mustLkc("state", "--check", id)
	e.mustLkc("update", "--net-rate", "none", id)
	e.mustLkc("state", "--check", id)
	ip := e.addr(id)
	e.mustLkc("delete", "-f", id)
	c.assertReleased(ip)
}
