package container

import (
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
	"github.com/lkc-containers/lkc/internal/cleanup"
	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/netpolicy"
	"github.com/lkc-containers/lkc/internal/steplog"
)

// NetPolicy is netPolicy for a restore.
func NetPolicy(cfg *config.Config) (*netpolicy.Policy, error) { return netPolicy(cfg) }

// netPolicy reads cfg's org.lkc.net-policy, nil without one.
func netPolicy(cfg *config.Config) (*netpolicy.Policy, error) {
	v, ok := cfg.Annotations[netpolicy.Annotation]
	if !ok {
		return nil, nil
	}
	return netpolicy.Parse(v)
}

// enforcePolicy attaches pol to the container's cgroup v2 directory (its
// own on a hybrid host, which init, pid, joins) before the user's process
// starts; undo kills init and removes that directory.
func enforcePolicy(pol *netpolicy.Policy, b *Build, pid int, undo *cleanup.Stack) error {
	defer steplog.Step("create: net policy")()
	v2Dir, _ := cgroupfs.V2Dir(b.Cgroup().Paths())
	if err := netpolicy.CheckHost(v2Dir); err != nil {
		return err
	}
	dir := b.StateDir()
	undo.Add(func() {
		unix.Kill(pid, unix.SIGKILL)
		releasePolicy(dir)
	})
	return netpolicy.Enforce(pol, dir, pid, v2Dir)
}

// releasePolicy removes the cgroup v2 directory a policy was given on a
// hybrid host, once the processes killed just before have left it.
func releasePolicy(stateDir string) error {
	var err error
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if err = netpolicy.Release(stateDir); err == nil || time.Now().After(deadline) {
			return err
		}
	}
}

// policyCgroup is a container's cgroup plus, on a hybrid host, the
// unified-hierarchy directory its policy is attached to: a process
// exec'd into the container joins both, so the policy binds it too.
type policyCgroup struct {
	cgroups.Manager
	procs string // the directory's cgroup.procs
}

func (p policyCgroup) Placement() ([]string, string) {
	tasks, cloneInto := p.Manager.Placement()
	return append(slices.Clip(tasks), p.procs), cloneInto
}

// withPolicyCgroup adds the container's policy directory, if it has one
// of its own, to where cg places a new process.
func withPolicyCgroup(cg cgroups.Manager, stateDir string) cgroups.Manager {
	dir, ok := netpolicy.OwnCgroup(stateDir)
	if !ok {
		return cg
	}
	return policyCgroup{Manager: cg, procs: filepath.Join(dir, "cgroup.procs")}
}

// RestorePolicy attaches pol for a restore, before CRIU brings the tasks
// back: on a v2 host to the container's cgroup, which they join; on a
// hybrid host to a directory of the container's own, and join, which CRIU
// knows nothing of, moves the restored tasks into it before they resume.
// undo kills the tasks and removes the directory.
func RestorePolicy(pol *netpolicy.Policy, b *Build, undo *cleanup.Stack) (join func() error, err error) {
	defer steplog.Step("restore: net policy")()
	v2Dir, _ := cgroupfs.V2Dir(b.Cgroup().Paths())
	if err := netpolicy.CheckHost(v2Dir); err != nil {
		return nil, err
	}
	dir := b.StateDir()
	undo.Add(func() {
		cgroups.KillAll(b.Cgroup())
		releasePolicy(dir)
	})
	if err := netpolicy.Enforce(pol, dir, 0, v2Dir); err != nil {
		return nil, err
	}
	own, ok := netpolicy.OwnCgroup(dir)
	if !ok {
		return func() error { return nil }, nil
	}
	return func() error {
		pids, err := b.Cgroup().Procs()
		for _, pid := range pids {
			if err == nil {
				err = netpolicy.Join(own, pid)
			}
		}
		return err
	}, nil
}
