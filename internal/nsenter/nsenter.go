// Package nsenter puts a freshly started `lkc init` into its cgroups and
// namespaces, and finishes a plain `lkc exec` process there without Go (a
// Plan). The work happens in a C constructor (nsenter.c) before the Go
// runtime starts; the Go files are the parent's side of that handshake.
//
// A binary that links this package runs the constructor at every start; it
// does nothing unless the environment names the handshake socket.
package nsenter

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// SyncEnv names the environment variable that carries the handshake fd.
const SyncEnv = "_LKC_INIT_SYNC"

var cloneFlags = map[string]int{
	"pid": unix.CLONE_NEWPID, "mount": unix.CLONE_NEWNS, "network": unix.CLONE_NEWNET,
	"uts": unix.CLONE_NEWUTS, "ipc": unix.CLONE_NEWIPC, "user": unix.CLONE_NEWUSER,
	"cgroup": unix.CLONE_NEWCGROUP, "time": unix.CLONE_NEWTIME,
}

// Request is what the constructor must do before Go starts.
type Request struct {
	Cgroups []string // v1 tasks files the process writes itself into
	// DeferCgroups makes the constructor wait, once in its namespaces, for
	// a second message with the cgroups (SendCgroups): the parent can start
	// init before the cgroups exist. Only where CanDeferCgroups says so.
	DeferCgroups bool
	Join         []Join // namespace files, in the order to enter them
	// Chroot is the directory that becomes the process's root once it is
	// in the namespaces: a container's /proc/<pid>/root, for a process
	// joining a container that shares its caller's mount namespace.
	Chroot      string
	Unshare     int // CLONE_NEW* flags of the namespaces to create
	TimeOffsets []config.TimeOffset
	Fork        bool
	// Exec makes the process after the fork wait for a Plan (SendPlan)
	// and exec it, instead of going on into Go.
	Exec bool
	// Affinity is the CPU list (config.CPUAffinity's format, or AllCPUs)
	// the process takes once it is in its cgroups, before it joins any
	// namespace: an exec's execCPUAffinity.final. Empty leaves the CPUs
	// it started with.
	Affinity string
	user     bool // a user namespace is joined or created
	// mount: a mount namespace is joined, where the host's cgroup files
	// need not be reachable.
	mount bool
}

// Join is a namespace file to enter, with the CLONE_NEW* flag of its type
// that setns checks it against.
type Join struct {
	Flag int
	Path string
}

// ForContainer builds the request that places a container's init: joins the
// namespaces given by path (time first, then user, mount last) and creates
// the others.
func ForContainer(c *config.Config) Request {
	var r Request
	for _, ns := range orderedNamespaces(c.Namespaces) {
		r.user = r.user || ns.Type == "user"
		if ns.Path != "" {
			r.Join = append(r.Join, Join{cloneFlags[ns.Type], ns.Path})
			r.Fork = r.Fork || ns.Type == "pid"
			r.mount = r.mount || ns.Type == "mount"
			continue
		}
		r.Unshare |= cloneFlags[ns.Type]
	}
	r.Fork = r.Fork || r.Unshare&(unix.CLONE_NEWPID|unix.CLONE_NEWTIME) != 0
	r.TimeOffsets = c.TimeOffsets
	return r
}

// CanDeferCgroups says whether the cgroup move may wait until the process
// is in its namespaces: not with a user namespace (its root may not write
// the host's cgroup files) nor in a joined mount namespace (which may not
// show them). A new cgroup namespace is then made after the move, so that
// it is rooted at the container's cgroup.
func (r Request) CanDeferCgroups() bool {
	return !r.user && !r.mount
}

// ForExec builds the request that enters the namespaces of a running
// process (a container's init), as `lkc exec` needs.
func ForExec(pid int, types []string) Request {
	var nss []config.Namespace
	for _, t := range types {
		nss = append(nss, config.Namespace{Type: t, Path: fmt.Sprintf("/proc/%d/ns/%s", pid, procName(t))})
	}
	r := Request{Fork: true}
	for _, ns := range orderedNamespaces(nss) {
		r.Join = append(r.Join, Join{cloneFlags[ns.Type], ns.Path})
		r.user = r.user || ns.Type == "user"
	}
	return r
}

func procName(typ string) string {
	switch typ {
	case "mount":
		return "mnt"
	case "network":
		return "net"
	}
	return typ
}

// orderedNamespaces puts the time namespace first, then the user
// namespace, the mount namespace last. A time namespace may be owned by
// the host's user namespace (one lkc made for a container without a user
// namespace, or another container's that a pod shares): setns into it
// needs CAP_SYS_ADMIN there, which joining the container's user
// namespace gives up. One the container's user namespace owns (lkc
// makes it inside, nsenter.c, unshare_new) is joined as well before.
func orderedNamespaces(nss []config.Namespace) []config.Namespace {
	out := make([]config.Namespace, 0, len(nss))
	rank := func(t string) int {
		switch t {
		case "time":
			return 0
		case "user":
			return 1
		case "mount":
			return 3
		}
		return 2
	}
	for r := 0; r <= 3; r++ {
		for _, ns := range nss {
			if rank(ns.Type) == r {
				out = append(out, ns)
			}
		}
	}
	return out
}

// AllCPUs as a Request's Affinity gives the process every CPU its cgroup
// allows: the kernel takes a mask of all CPUs as the cpuset's.
const AllCPUs = "all"

// Encode renders the request in the constructor's line protocol.
func (r Request) Encode() []byte {
	var b strings.Builder
	for _, p := range r.Cgroups {
		b.WriteString("cgroup " + p + "\n")
	}
	if r.Affinity != "" {
		b.WriteString("affinity " + r.Affinity + "\n")
	}
	if r.DeferCgroups {
		b.WriteString("defer cgroup\n")
	}
	for _, j := range r.Join {
		fmt.Fprintf(&b, "join %d %s\n", j.Flag, j.Path)
	}
	if r.Chroot != "" {
		b.WriteString("chroot " + r.Chroot + "\n")
	}
	if r.Unshare != 0 {
		b.WriteString("unshare " + strconv.Itoa(r.Unshare) + "\n")
	}
	for _, o := range r.TimeOffsets {
		fmt.Fprintf(&b, "timeoffset %s %d %d\n", o.Clock, o.Secs, o.Nanos)
	}
	if r.Fork {
		b.WriteString("fork\n")
	}
	if r.Exec {
		b.WriteString("exec\n")
	}
	return []byte(b.String())
}
