package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// hostVeth is the name of the host side of the network's only veth.
func (c *cniNet) hostVeth(t *testing.T) string {
	t.Helper()
	f := strings.Fields(c.ports())
	if len(f) < 2 {
		t.Fatalf("no veth on %s", c.bridge)
	}
	name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
	return name
}

// tc runs tc with args and returns its output.
func tc(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("tc", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("tc %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// hostQdiscs is `tc qdisc show` of the host side of the network's only
// veth, where the bandwidth plugin puts the limit of what the container
// receives.
func (c *cniNet) hostQdiscs(t *testing.T) string {
	t.Helper()
	return tc(t, "qdisc", "show", "dev", c.hostVeth(t))
}

// egressQdiscs is `tc qdisc show` of the ifb device the bandwidth plugin
// redirects what the container sends to, where it puts that limit; ""
// when the veth redirects nothing (no egress limit).
func (c *cniNet) egressQdiscs(t *testing.T) string {
	t.Helper()
	ifb := c.egressIfb(t)
	if ifb == "" {
		return ""
	}
	return tc(t, "qdisc", "show", "dev", ifb)
}

// egressIfb is the ifb device the network's only veth redirects what the
// container sends to; "" when it redirects nothing (no egress limit).
func (c *cniNet) egressIfb(t *testing.T) string {
	t.Helper()
	veth := c.hostVeth(t)
	if !strings.Contains(tc(t, "qdisc", "show", "dev", veth, "ingress"), "ingress") {
		return ""
	}
	filters := tc(t, "filter", "show", "dev", veth, "parent", "ffff:")
	_, after, ok := strings.Cut(filters, "to device ")
	if !ok {
		return ""
	}
	ifb, _, _ := strings.Cut(after, ")")
	return ifb
}

// runLimited runs a container that sleeps on network c with the
// org.lkc.net-rate annotation rate, and returns its id.
func (c *cniNet) runLimited(e *env, rate string) string {
	e.t.Helper()
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "1000"}, c.annotate("org.lkc.net-rate", rate)), id)
	return id
}

// netRate is the org.lkc.net-rate annotation `state` shows for id.
func (e *env) netRate(id string) any {
	e.t.Helper()
	a, _ := e.state(id)["annotations"].(map[string]any)
	return a["org.lkc.net-rate"]
}

// TestNetworkUpdateRateAdds gives a limit with `update --net-rate` to a
// container created without one, on a network able to limit it.
func TestNetworkUpdateRateAdds(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	id := e.id()
	b := e.bundle([]string{"sleep", "60"}, c.annotate())
	e.mustLkc("run", "-d", "--bundle", b, id)
	if q := c.hostQdiscs(t); strings.Contains(q, "tbf") {
		t.Fatalf("a limit before any was asked for: %s", q)
	}
	e.mustLkc("update", "--net-rate", "ingress=10mbit", id)
	if q := c.hostQdiscs(t); !strings.Contains(q, "tbf") || !strings.Contains(q, "rate 10Mbit") {
		t.Errorf("after update --net-rate ingress=10mbit: %s", q)
	}
	if got := e.netRate(id); got != "ingress=10000000bit" {
		t.Errorf("state shows net-rate %v", got)
	}
	// The fastest limit lkc takes is one the plugin takes.
	e.mustLkc("update", "--net-rate", "ingress=640gbit", id)
	if q := c.hostQdiscs(t); !strings.Contains(q, "rate 640Gbit") {
		t.Errorf("after update --net-rate ingress=640gbit: %s", q)
	}
	e.mustLkc("delete", "-f", id)
	c.assertReleased("")
}

// failOncePlugin stands in for the bandwidth plugin: its first ADD fails,
// everything else is the real plugin's.
const failOncePlugin = `#!/bin/sh
if [ "$CNI_COMMAND" = ADD ] && mkdir "$(dirname "$0")/failed" 2>/dev/null; then
	echo '{"cniVersion":"1.0.0","code":999,"msg":"lkc test: refused once"}'
	exit 1
fi
exec /usr/lib/cni/bandwidth
`

// TestNetworkUpdateRateFailureKeepsLimit: when the plugin refuses the new
// limit (after the DEL that removed the old one), the container keeps its
// old limit, as its annotation still says.
func TestNetworkUpdateRateFailureKeepsLimit(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	id := c.runLimited(e, "ingress=10mbit")
	if q := c.hostQdiscs(t); !strings.Contains(q, "rate 10Mbit") {
		t.Fatalf("no 10 Mbit/s limit after create: %s", q)
	}
	plugins := t.TempDir()
	if err := os.WriteFile(filepath.Join(plugins, "bandwidth"), []byte(failOncePlugin), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LKC_CNI_PATH", plugins+":/usr/lib/cni")
	e.failLkc(`--net-rate: container `+id+`: network `+c.name+`: .*lkc test: refused once`, "update", "--net-rate", "ingress=20mbit", id)
	if q := c.hostQdiscs(t); !strings.Contains(q, "rate 10Mbit") {
		t.Errorf("the old limit is gone after a refused update: %s", q)
	}
	if got := e.netRate(id); got != "ingress=10mbit" {
		t.Errorf("state shows net-rate %v", got)
	}
	e.mustLkc("update", "--net-rate", "ingress=20mbit", id)
	if q := c.hostQdiscs(t); !strings.Contains(q, "rate 20Mbit") {
		t.Errorf("after the second update: %s", q)
	}
	e.mustLkc("delete", "-f", id)
	c.assertReleased("")
}

// TestNetworkUpdatedRateSurvivesCheckpointAll: a limit changed with
// `update --net-rate` is the one in force after checkpoint --all and
// restore --all (which promise the limits as they were at the dump), not
// the bundle's annotation.
func TestNetworkUpdatedRateSurvivesCheckpointAll(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	c := newCNINet(e, "")
	id := c.runLimited(e, "ingress=10mbit")
	e.mustLkc("update", "--net-rate", "ingress=20mbit", id)
	images := filepath.Join(t.TempDir(), "images")
	e.mustLkc("checkpoint", "--all", "--image-dir", images)
	e.mustLkc("restore", "--all", "--image-dir", images)
	if q := c.hostQdiscs(t); !strings.Contains(q, "rate 20Mbit") {
		t.Errorf("after restore --all: %s, want the updated 20 Mbit/s", q)
	}
	if got := e.netRate(id); got != "ingress=20000000bit" {
		t.Errorf("state shows net-rate %v after restore --all", got)
	}
	e.mustLkc("delete", "-f", id)
	c.assertReleased("")
}

// TestNetworkUpdateRateKeepsOtherDirection: `update --net-rate` changes
// the directions it names and keeps the other's limit, DIRECTION=none
// removes one, and a bad value changes nothing.
func TestNetworkUpdateRateKeepsOtherDirection(t *testing.T) {
	e := newEnv(t)
	c := newCNINet(e, "")
	id := c.runLimited(e, "egress=10mbit,ingress=20mbit")
	check := func(step, egress, ingress, recorded string) {
		t.Helper()
		if q := c.egressQdiscs(t); (egress == "") == strings.Contains(q, "tbf") || !strings.Contains(q, egress) {
			t.Errorf("%s: egress qdiscs %q, want %q", step, q, egress)
		}
		if q := c.hostQdiscs(t); (ingress == "") == strings.Contains(q, "tbf") || !strings.Contains(q, ingress) {
			t.Errorf("%s: ingress qdiscs %q, want %q", step, q, ingress)
		}
		if got := e.netRate(id); got != recorded {
			t.Errorf("%s: state shows net-rate %v, want %s", step, got, recorded)
		}
	}
	check("create", "rate 10Mbit", "rate 20Mbit", "egress=10mbit,ingress=20mbit")
	e.mustLkc("update", "--net-rate", "egress=30mbit", id)
	check("egress=30mbit", "rate 30Mbit", "rate 20Mbit", "egress=30000000bit,ingress=20000000bit")
	e.mustLkc("update", "--net-rate", "ingress=5mbit", id)
	check("ingress=5mbit", "rate 30Mbit", "rate 5Mbit", "egress=30000000bit,ingress=5000000bit")
	for _, bad := range []struct{ value, want string }{
		{"egress=none,egress=1mbit", "--net-rate: egress is given twice"},
		{"egress=", `--net-rate: egress: rate ""`},
		{"none,ingress=1mbit", `--net-rate: "none": use egress=RATE,ingress=RATE \(RATE like 10mbit, or none\)`},
		{"up=1mbit", `--net-rate: "up=1mbit": use egress=RATE`},
	} {
		e.failLkc(bad.want, "update", "--net-rate", bad.value, id)
	}
	check("bad values", "rate 30Mbit", "rate 5Mbit", "egress=30000000bit,ingress=5000000bit")
	e.mustLkc("update", "--net-rate", "egress=none", id)
	check("egress=none", "", "rate 5Mbit", "ingress=5000000bit")
	e.mustLkc("update", "--net-rate", "egress=2mbit", id)
	check("egress=2mbit", "rate 2Mbit", "rate 5Mbit", "egress=2000000bit,ingress=5000000bit")
	e.mustLkc("update", "--net-rate", "none", id)
	check("none", "", "", "none")
	e.mustLkc("delete", "-f", id)
	c.assertReleased("")
}
