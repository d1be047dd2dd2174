package cr

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lkc-containers/lkc/internal/checkpoint"
	"github.com/lkc-containers/lkc/internal/cleanup"
	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/container"
	"github.com/lkc-containers/lkc/internal/netns"
	"github.com/lkc-containers/lkc/internal/network"
)

// A container attached to CNI networks (internal/network) keeps its
// addresses across a checkpoint the way Podman's CNI restore does: its
// network namespace is external to CRIU (nothing of it is dumped: the
// veths belong to the plugins, whose DEL at the end of the dump removes
// them), the images keep the addresses (cniFile), and the restore makes
// a new namespace, runs ADD of the same networks into it asking for those
// addresses, and has CRIU restore the tasks, and their sockets, into it.
const cniFile = "network.json"

// carryCNI marks the network namespace of a container attached to CNI
// networks as external and saves its addresses in imageDir; nil when the
// container has no networks. CRIU's network lock stays: the namespace is
// reachable during the dump, and a packet reaching a dumped socket after
// its task is gone would answer with a reset.
func (c subject) carryCNI(imageDir string) (*netnsCarry, error) {
	kept, err := network.Keep(c.StateDir())
	if kept == nil || err != nil {
		return nil, err
	}
	data, err := json.Marshal(kept)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(imageDir, cniFile), data, 0o600); err != nil {
		return nil, fmt.Errorf("saving the network addresses: %w", err)
	}
	ino, err := netns.Inode(c.Pid())
	if err != nil {
		return nil, err
	}
	return &netnsCarry{
		ext:   fmt.Sprintf("net[%d]:%s", ino, netnsKey),
		lock:  true,
		saved: func() error { return nil },
	}, nil
}

// startCNI starts, from another thread, what the restore of a container
// that was on CNI networks needs: a new network namespace with its
// loopback up, pinned in stateDir, and ADD of the config's networks into
// it with the addresses the images kept, then the config's net.*
// sysctls; nil wait when the images kept none. undo runs DEL and removes
// the namespace if the restore fails.
func startCNI(imageDir, stateDir string, cfg *config.Config, undo *cleanup.Stack) (wait func(*checkpoint.Request) (*netns.Namespace, error), err error) {
	data, err := os.ReadFile(filepath.Join(imageDir, cniFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the kept network addresses: %w", err)
	}
	var kept network.Kept
	if err := json.Unmarshal(data, &kept); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", cniFile, err)
	}
	plan, err := container.NetworkPlan(cfg)
	if err != nil {
		return nil, err
	}
	if plan == nil {
		return nil, fmt.Errorf("the checkpoint was attached to CNI networks, but the config has no annotation %s", network.AnnotationNetwork)
	}
	netSysctls, _ := network.NetSysctls(cfg.Sysctl)
	loopback := netns.Snapshot{Links: []netns.Link{{Index: 1, Name: "lo", MTU: 65536, Up: true}}}
	build := func() (*netns.Namespace, error) {
		ns, err := loopback.Build(nil)
		if err != nil {
			return nil, err
		}
		if err := plan.AttachKept(stateDir, fmt.Sprintf("/proc/self/fd/%d", ns.File.Fd()), &kept); err != nil {
			ns.Remove()
			return nil, err
		}
		// As create does after its ADD: the namespace is new, and CRIU
		// restores nothing of one external to it.
		if err := network.SetSysctls(stateDir, netSysctls); err != nil {
			network.Detach(stateDir)
			ns.Remove()
			return nil, err
		}
		return ns, nil
	}
	done := cleanup.Background(build, func(ns *netns.Namespace) {
		network.Detach(stateDir)
		ns.Remove()
	}, undo)
	return func(req *checkpoint.Request) (*netns.Namespace, error) {
		ns, err := done()
		if err != nil {
			return nil, err
		}
		req.Opts.InheritFd = append(req.Opts.InheritFd, checkpoint.InheritFd{Key: netnsKey, Fd: req.AddFile(ns.File)})
		return ns, nil
	}, nil
}
