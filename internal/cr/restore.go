package cr

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/checkpoint"
	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/container"
	"github.com/lkc-containers/lkc/internal/lsm"
	"github.com/lkc-containers/lkc/internal/spec"
	"github.com/lkc-containers/lkc/internal/state"
)

// RestoreOpts are the options of `lkc restore` (runc's flags).
type RestoreOpts struct {
	Root, ID, Bundle string
	// Adopt, when set, has the daemon serve the restored container when its
	// config asks for a daemon feature, adding what it serves (the virtual
	// /proc's bind mounts, whose CRIU keys then map to this host's files)
	// to cfg; release undoes it when the restore fails or the container,
	// restored in the foreground, ends.
	Adopt func(cfg *config.Config) (release func(), err error)

	CRIU string

	ImagePath, WorkPath, ParentPath string

	ConsoleSocket string
	PidFile       string
	Detach        bool
	NoSubreaper   bool
	NoPivot       bool

	TCPEstablished bool
	ExtUnixSk      bool
	ShellJob       bool
	FileLocks      bool
	LazyPages      bool
	// AutoDedup has CRIU punch each page out of the images as it restores
	// it, so images on a tmpfs give their memory back (runc's flag).
	AutoDedup bool
	EmptyNS   []string
	// LSMProfile ("apparmor:NAME" or "selinux:LABEL") replaces the
	// profile or label the images hold for the restored tasks, and
	// LSMMountContext the SELinux context= of the restored mounts (runc's
	// --lsm-profile and --lsm-mount-context, for a restore on a host
	// whose policy names them otherwise).
	LSMProfile, LSMMountContext string

	ManageCgroupsMode string
	// PageServer is the "host:port" of the source's page server; with
	// LazyPages, lkc starts CRIU's lazy-pages daemon against it itself.
	PageServer string
	// StatusFD, when not nil, gets one '\0' byte once the restored
	// container runs.
	StatusFD *os.File

	// Warn gets failures that must not fail the operation; nil drops them.
	Warn func(error)
	// Verbose is CheckpointOpts.Verbose for the restore.
	Verbose bool
}

// RestoreTuning is what a migration's receiver adds to a restore; the
// zero value is a plain `lkc restore`.
type RestoreTuning struct {
	// External are more CRIU --external entries: "veth[eth0]:vc1@br0"
	// re-creates a migrated container's veth with its peer on this host.
	External []string
	// NetworkIsolated restores a dump made with DumpTuning.NetworkIsolated,
	// which holds no network lock to release. The container must be off
	// the network until it runs (its veths restored without a bridge, the
	// caller connects them after).
	NetworkIsolated bool
	// Resources, when not nil, are the limits the container's cgroups get
	// and record instead of the config's (a migration brings the source's,
	// `lkc update`s included).
	Resources *config.Resources
	// Annotations replace the config's of the same keys: those lkc
	// changed on the running container (container.Handle.LiveAnnotations),
	// which the config's file keeps as they were at create.
	Annotations map[string]string
	// FlatCgroups says every dumped task sat in the container's own
	// cgroups, none in a sub-cgroup: CRIU may then start in the new
	// container's cgroups and leave cgroups alone (checkpoint.Request's
	// Cgroups), as the limits are lkc's to set anyway.
	FlatCgroups bool
	// Stdio, where not nil, replaces lkc's own fd 0, 1 or 2 as what the
	// restored tasks get in place of the pipes and outside files they had
	// (a migration reopens the container's /dev/null on the target).
	Stdio [3]*os.File
	// OwnBundle records that the caller made Bundle for this container
	// alone (`lkc serve`): deleting the container removes it.
	OwnBundle bool
	// Frozen has the restored container come back paused, its tasks never
	// run: lkc freezes the cgroup while CRIU still holds them (freezeTasks;
	// a migration's target lets them run only once the source has given
	// the container up).
	Frozen bool
	// Release, when not nil, is handed what unmounts the restore's staging
	// mounts (CRIU's view of the rootfs and its tmpfs sources) once the
	// container runs, for the caller to run later, when the time it takes
	// (an RCU grace period per unmount) no longer counts, and before it
	// exits; nil unmounts them before Restore returns. A failed restore
	// unmounts them itself.
	Release func(unmount func())
}

// Restore brings a checkpoint back as container ID; like run, without
// Detach it waits and returns the exit code (128+N after signal N) and then
// deletes the container. A restore that fails leaves nothing behind: no
// state, cgroup, mount or process.
func Restore(o RestoreOpts) (int, error) { return RestoreTuned(o, RestoreTuning{}) }

// RestoreTuned is Restore with a migration's tuning.
func RestoreTuned(o RestoreOpts, t RestoreTuning) (int, error) {
	if err := checkCriuOpts(o.ManageCgroupsMode, o.EmptyNS, o.PageServer); err != nil {
		return 0, fmt.Errorf("restoring container %s: %w", o.ID, err)
	}
	// CRIU's strict mode aborts on a cgroup that exists, and lkc makes the
	// container's before CRIU restores into them (docs/criu.md).
	if o.ManageCgroupsMode == "strict" {
		return 0, fmt.Errorf("restoring container %s: --manage-cgroups-mode strict: CRIU would refuse the cgroups lkc makes for the container; use soft or full", o.ID)
	}
	if err := checkLSMOpts(o.LSMProfile, o.LSMMountContext, lsm.Default); err != nil {
		return 0, fmt.Errorf("restoring container %s: %w", o.ID, err)
	}
	cfg, err := restoreConfig(&o)
	if err != nil {
		return 0, err
	}
	if cfg.Process.Terminal && o.ConsoleSocket == "" {
		return 0, fmt.Errorf("process.terminal is true: restoring needs --console-socket to hand the new terminal to")
	}
	release := func() {}
	if o.Adopt != nil {
		if release, err = o.Adopt(cfg); err != nil {
			return 0, err
		}
	}
	code, err := restoreAdopted(o, t, cfg)
	if err != nil || !o.Detach {
		release()
	}
	return code, err
}

// restoreAdopted is RestoreTuned once the daemon serves the container.
func restoreAdopted(o RestoreOpts, t RestoreTuning, cfg *config.Config) (int, error) {
	cr, err := checkpoint.Find(o.CRIU)
	if err != nil {
		return 0, err
	}
	if !o.Detach && !o.NoSubreaper {
		// Restored as our child (CRIU's rst_sibling); being a subreaper
		// also keeps whatever it forks from escaping the wait.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return 0, fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
		}
	}
	var fg *container.Foreground
	if !o.Detach {
		fg = container.CatchSignals()
		defer fg.Stop()
	}
	pid, err := restore(cr, o, t, cfg)
	if err != nil {
		return 0, fmt.Errorf("restoring container %s: %w", o.ID, err)
	}
	if o.StatusFD != nil {
		o.StatusFD.Write([]byte{0})
	}
	if o.Detach {
		return 0, nil
	}
	return fg.Wait(o.Root, o.ID, pid, o.Warn)
}

// restoreConfig converts the bundle's config.json: a restore reads the
// bundle itself, as runc's does.
func restoreConfig(o *RestoreOpts) (*config.Config, error) {
	if err := state.CheckID(o.ID); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	s, err := spec.LoadBundle(bundle)
	if err != nil {
		return nil, err
	}
	cfg, err := spec.Convert(s, o.ID, bundle)
	if err != nil {
		return nil, err
	}
	if err := checkNotIDMapped(cfg); err != nil {
		return nil, fmt.Errorf("restoring container %s: %w", o.ID, err)
	}
	cfg.NoPivot = o.NoPivot
	return cfg, nil
}
