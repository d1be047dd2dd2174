package cr

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/lkc-containers/lkc/internal/checkpoint"
	"github.com/lkc-containers/lkc/internal/cleanup"
	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/netns"
)

// A container's own network namespace is carried by lkc (internal/netns)
// when it can be rebuilt exactly: CRIU is told it is external, skips the
// ~30 tool execs it would spend on it, and joins the one lkc builds on
// restore. netnsFile in the images says so.
//
// For a migration (DumpTuning.NetworkIsolated) CRIU goes further: it
// runs inside the container's namespace, on both sides, and so does not
// see one at all. An external namespace still costs a dump two walks of
// the host's whole conntrack table (CRIU dumps conntrack entries of every
// namespace it sees: ~13 ms here, docs/migrate.md). netnsInsideFile in the
// images says so; their restore must start CRIU in the rebuilt namespace.
const (
	netnsFile       = "netns.json"
	netnsInsideFile = "netns-criu-inside"
	netnsKey        = "lkc-netns"
)

// CriuInNetns reports whether the dump in imageDir ran CRIU inside the
// container's network namespace: its page server listens there.
func CriuInNetns(imageDir string) bool {
	_, err := os.Stat(filepath.Join(imageDir, netnsInsideFile))
	return err == nil
}

// netnsCarry is a network namespace a dump carries (carryNetns).
type netnsCarry struct {
	ext    string // CRIU's external entry for it; "" when CRIU runs inside
	inside bool   // CRIU runs inside it
	lock   bool   // CRIU's network lock is still needed
	// saved waits until netnsFile is written: the sysctls are read while
	// CRIU dumps, and the images are complete only once they are in.
	saved func() error
}

// carryNetns saves the container's network namespace for lkc to rebuild,
// when it can, and says how CRIU is to treat it; nil leaves the namespace
// to CRIU. Veths are carried only when the caller took them off the
// network and recreates their peers (DumpTuning.NetworkIsolated),
// which also puts CRIU inside, where the loopback is up (a lazy dump's
// page server listens on it).
//
// Such a namespace also needs no network lock: nothing outside can reach
// it (the loopback only, or veths cut off by the caller), and the tasks
// inside are frozen during the dump and not yet running during the
// restore. CRIU's nftables lock costs two RCU grace periods each way.
//
// Preconditions: the container is frozen, and stays frozen until saved
// returns.
func (c subject) carryNetns(o dump, imageDir string) (*netnsCarry, error) {
	if !c.netnsCarriable(o) {
		return nil, nil
	}
	if carry, err := c.carryCNI(imageDir); carry != nil || err != nil {
		return carry, err
	}
	pid := c.Pid()
	snap, err := netns.Capture(pid, o.NetworkIsolated)
	if errors.Is(err, netns.ErrNotCarried) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the network namespace: %w", err)
	}
	carry := &netnsCarry{}
	if o.NetworkIsolated && snap.LoopbackUp() {
		if err := os.WriteFile(filepath.Join(imageDir, netnsInsideFile), nil, 0o600); err != nil {
			return nil, err
		}
		carry.inside = true
	} else {
		ino, err := netns.Inode(pid)
		if err != nil {
			return nil, err
		}
		carry.ext = fmt.Sprintf("net[%d]:%s", ino, netnsKey)
	}
	done := make(chan error, 1)
	go func() {
		err := snap.ReadSysctls(pid)
		var data []byte
		if err == nil {
			data, err = json.Marshal(snap)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(imageDir, netnsFile), data, 0o600)
		}
		if err != nil {
			err = fmt.Errorf("saving the network namespace: %w", err)
		}
		done <- err
	}()
	carry.saved = sync.OnceValue(func() error { return <-done })
	return carry, nil
}

// netnsCarriable says whether the config lets lkc carry the container's
// network namespace: its own, and not owned by a user namespace, which
// lkc, outside it, cannot make on restore.
func (c subject) netnsCarriable(o dump) bool {
	cfg := c.Config()
	return cfg.NewNamespace("network") && !cfg.NewNamespace("user") && !slices.Contains(o.EmptyNS, "network")
}

// criuInsideNetns guesses, before the freeze, whether carryNetns will run
// CRIU inside the container's network namespace, for a CRIU started
// ahead (PrestartDump); a wrong guess only costs that start.
func (c subject) criuInsideNetns(o dump) bool {
	if !o.NetworkIsolated || !c.netnsCarriable(o) {
		return false
	}
	snap, err := netns.Capture(c.Pid(), true)
	return err == nil && snap.LoopbackUp()
}

// startNetns starts building, from another thread, the network namespace
// a checkpoint carried, if it did (nil wait when it did not), so that the
// build runs beside the restore's cgroups and mounts. wait returns the
// namespace once built and hands it to CRIU's request; the restore then
// needs no network lock either. The caller closes the namespace once CRIU
// is done; undo removes it, and its veths, if the restore fails.
func startNetns(imageDir string, cfg *config.Config, external []string, undo *cleanup.Stack) (wait func(*checkpoint.Request) (*netns.Namespace, error), err error) {
	data, err := os.ReadFile(filepath.Join(imageDir, netnsFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the saved network namespace: %w", err)
	}
	if !cfg.NewNamespace("network") {
		return nil, fmt.Errorf("the checkpoint carries a network namespace, but the config joins one or has none")
	}
	var snap netns.Snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", netnsFile, err)
	}
	done := cleanup.Background(func() (*netns.Namespace, error) { return snap.Build(vethPeers(external)) },
		func(ns *netns.Namespace) { ns.Remove() }, undo)
	inside := CriuInNetns(imageDir)
	return func(req *checkpoint.Request) (*netns.Namespace, error) {
		ns, err := done()
		if err != nil {
			return nil, err
		}
		if inside {
			req.NetNS = ns.File
		} else {
			req.Opts.InheritFd = append(req.Opts.InheritFd, checkpoint.InheritFd{Key: netnsKey, Fd: req.AddFile(ns.File)})
		}
		req.Opts.NetworkLock = checkpoint.LockSkip
		return ns, nil
	}, nil
}

// vethPeers reads CRIU's "veth[inside]:peer[@bridge]" externals, which
// name where each veth's other end goes on this host.
func vethPeers(external []string) map[string]netns.Peer {
	peers := map[string]netns.Peer{}
	for _, e := range external {
		rest, ok := strings.CutPrefix(e, "veth[")
		inside, out, ok2 := strings.Cut(rest, "]:")
		if !ok || !ok2 {
			continue
		}
		name, br, _ := strings.Cut(out, "@")
		peers[inside] = netns.Peer{Name: name, Bridge: br}
	}
	return peers
}
