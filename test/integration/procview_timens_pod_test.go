package integration

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// podClocks is what one container of a shared pid namespace sees: its
// time namespace, its /proc/uptime and the start time (field 22, in
// seconds) and procps ps's ELAPSED of pid 1, the namespace's init.
type podClocks struct {
	ns                string
	up, init1, etimes float64
}

// podClocks reads podClocks in container id, in one exec.
func (d *daemonEnv) podClocks(id string) podClocks {
	d.t.Helper()
	out := d.mustLkc("exec", id, "sh", "-c", "readlink /proc/self/ns/time; cut -d' ' -f1 /proc/uptime; cut -d' ' -f22 /proc/1/stat; "+procps("ps")+" -o etimes= -p 1")
	f := strings.Fields(out)
	if len(f) != 4 {
		d.t.Fatalf("time namespace, uptime, pid 1's start, its etimes: %q", out)
	}
	c := podClocks{ns: f[0]}
	var errs [3]error
	c.up, errs[0] = strconv.ParseFloat(f[1], 64)
	c.init1, errs[1] = strconv.ParseFloat(f[2], 64)
	c.etimes, errs[2] = strconv.ParseFloat(f[3], 64)
	for _, err := range errs {
		if err != nil {
			d.t.Fatalf("%q: %v", out, err)
		}
	}
	c.init1 /= 100
	return c
}

// TestProcViewTimeNamespacePod: a view container that joins another's pid
// namespace (a pod's, as containerd's CRI gives) joins its time namespace
// too, so both count their processes' start times from one boot: ps in
// the second shows the first's init as old as the first's uptime, which
// a time namespace of its own (whose boot is its start, seconds later)
// would not. A config with a time namespace of its own keeps it.
func TestProcViewTimeNamespacePod(t *testing.T) {
	d := newDaemonEnv(t)
	hostNS := hostTimeNS(t)
	procpsMount := withProcps(t)
	view := func(extra func(*specs.Spec)) func(*specs.Spec) {
		return func(s *specs.Spec) {
			s.Root.Path, s.Root.Readonly = d.writableRootfs(), false
			s.Annotations = map[string]string{"org.lkc.proc": "virtual"}
			procpsMount(s)
			if extra != nil {
				extra(s)
			}
		}
	}
	first := d.id()
	d.mustLkc("run", "-d", "--bundle", d.bundle([]string{"sleep", "1000"}, view(nil)), first)
	t.Cleanup(func() { d.lkc("delete", "--force", first) })
	pid := int(d.state(first)["pid"].(float64))
	// Long enough that a boot at the second's start would be unmistakable.
	time.Sleep(3 * time.Second)
	second := d.id()
	d.mustLkc("run", "-d", "--bundle", d.bundle([]string{"sleep", "1000"}, view(func(s *specs.Spec) { joinPidNS(s, pid) })), second)
	t.Cleanup(func() { d.lkc("delete", "--force", second) })

	// The second is read first: the first's uptime, read t later, is
	// then at least the second's and at most t more.
	began := time.Now()
	b := d.podClocks(second)
	a := d.podClocks(first)
	span := time.Since(began).Seconds()
	t.Logf("first %+v, second %+v, read %.2f s apart at most", a, b, span)
	if a.ns == hostNS || b.ns != a.ns {
		t.Errorf("time namespace of the first %s, of the second %s (the host's %s): want the first's for both", a.ns, b.ns, hostNS)
	}
	if b.up < a.up-span-0.5 || b.up > a.up+0.5 {
		t.Errorf("the second's uptime %.2f s, the first's %.2f s read %.2f s later: want one clock", b.up, a.up, span)
	}
	if b.init1 > b.up || b.etimes < b.up-b.init1-2 || b.etimes > b.up-b.init1+2 {
		t.Errorf("in the second, pid 1 (the first's init) started at %.2f s, its ELAPSED is %.0f s, the uptime %.2f s", b.init1, b.etimes, b.up)
	}
	if b.etimes < 3-1 {
		t.Errorf("in the second, pid 1 (the first's init, started 3 s before it) ran %.0f s", b.etimes)
	}

	own := d.id()
	d.mustLkc("run", "-d", "--bundle", d.bundle([]string{"sleep", "1000"}, view(func(s *specs.Spec) {
		joinPidNS(s, pid)
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
	})), own)
	t.Cleanup(func() { d.lkc("delete", "--force", own) })
	ownPid := int(d.state(own)["pid"].(float64))
	if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/time", ownPid)); err != nil || ns == a.ns || ns == hostNS {
		t.Errorf("a config with a time namespace of its own, joining the pid namespace: in %q (%v); want its own (the first's %s, the host's %s)", ns, err, a.ns, hostNS)
	}
}
