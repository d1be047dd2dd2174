package cli

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/container"
	"github.com/lkc-containers/lkc/internal/spec"
	"github.com/lkc-containers/lkc/internal/state"
	"github.com/lkc-containers/lkc/internal/steplog"
)

// createFlags are the flags create and run share.
type createFlags struct {
	bundle, pidFile, consoleSocket string
	noPivot, noNewKeyring          bool
	preserveFDs                    int
}

func (f *createFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.bundle, "bundle", ".", "path to the bundle directory")
	fs.StringVar(&f.bundle, "b", ".", "path to the bundle directory")
	fs.StringVar(&f.pidFile, "pid-file", "", "file to write the init pid to")
	fs.StringVar(&f.consoleSocket, "console-socket", "", "unix socket to send the terminal master to")
	fs.BoolVar(&f.noPivot, "no-pivot", false, "use MS_MOVE and chroot instead of pivot_root")
	fs.BoolVar(&f.noNewKeyring, "no-new-keyring", false, "keep the caller's session keyring")
	fs.IntVar(&f.preserveFDs, "preserve-fds", 0, "pass this many fds after stdio to the container")
}

// opts loads and validates the bundle's config into create options.
func (f *createFlags) opts(g *globals, id string) (container.CreateOpts, error) {
	if err := state.CheckID(id); err != nil {
		return container.CreateOpts{}, err
	}
	if f.preserveFDs < 0 {
		return container.CreateOpts{}, fmt.Errorf("--preserve-fds %d is negative", f.preserveFDs)
	}
	bundle, err := filepath.Abs(f.bundle)
	if err != nil {
		return container.CreateOpts{}, err
	}
	end := steplog.Step("load config")
	s, err := spec.LoadBundle(bundle)
	if err != nil {
		return container.CreateOpts{}, err
	}
	cfg, err := spec.Convert(s, id, bundle)
	end()
	if err != nil {
		return container.CreateOpts{}, err
	}
	if s.Process != nil {
		warnUnknownCaps(g, s.Process.Capabilities)
	}
	cfg.NoPivot = f.noPivot
	pidFile, err := absPath(f.pidFile)
	if err != nil {
		return container.CreateOpts{}, err
	}
	preserve := f.preserveFDs
	if n := listenFDs(); n > 0 {
		cfg.Process.Env = append(cfg.Process.Env, "LISTEN_FDS="+strconv.Itoa(n), "LISTEN_PID=1")
		preserve += n
	}
	if err := checkPreserved(preserve); err != nil {
		return container.CreateOpts{}, err
	}
	return container.CreateOpts{
		Root: g.root, ID: id, Config: cfg, PidFile: pidFile,
		ConsoleSocket: f.consoleSocket, NoNewKeyring: f.noNewKeyring, PreserveFDs: preserve,
		Warn: g.warn,
	}, nil
}

// listenFDs is the number of fds systemd's socket activation gave lkc
// (LISTEN_FDS, for this very process by LISTEN_PID), which Podman passes
// on to the runtime: as runc does, create hands them to the container's
// process from fd 3, before the --preserve-fds ones, and sets LISTEN_FDS
// and LISTEN_PID=1 in its environment.
func listenFDs() int {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return 0
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func cmdCreate(g *globals, args []string) error {
	var f createFlags
	fs := newFlags("create")
	f.register(fs)
	rest, err := parse(fs, args, exactly(1), "lkc create [flags] <container-id>")
	if err != nil {
		return err
	}
	o, err := f.opts(g, rest[0])
	if err != nil {
		return err
	}
	a, err := adopt(&o)
	if err != nil {
		return err
	}
	if err := container.Create(o); err != nil {
		a.release()
		return err
	}
	return nil
}

func cmdRun(g *globals, args []string) error {
	var f createFlags
	var detach, keep, noSubreaper bool
	fs := newFlags("run")
	f.register(fs)
	fs.BoolVar(&detach, "detach", false, "detach from the container")
	fs.BoolVar(&detach, "d", false, "detach from the container")
	fs.BoolVar(&keep, "keep", false, "keep the container after it exits")
	fs.BoolVar(&noSubreaper, "no-subreaper", false, "accepted for runc compatibility")
	rest, err := parse(fs, args, exactly(1), "lkc run [flags] <container-id>")
	if err != nil {
		return err
	}
	o, err := f.opts(g, rest[0])
	if err != nil {
		return err
	}
	a, err := adopt(&o)
	if err != nil {
		return err
	}
	// The container's process has exited: its release goes to the daemon
	// while run deletes it, and run exits once the release is sent.
	var gone bool
	released := make(chan struct{})
	ro := container.RunOpts{CreateOpts: o, Detach: detach, Keep: keep, Gone: func() {
		gone = true
		go func() {
			a.releaseLater()
			close(released)
		}()
	}}
	code, err := container.Run(ro)
	switch {
	case gone:
		<-released
	case err != nil:
		a.release() // the container was never made
	}
	return processExit(code, err)
}

// absPath makes a path given on the command line absolute ("" stays "").
func absPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	return filepath.Abs(p)
}

// warnUnknownCaps warns about the capability names the config gives that
// lkc ignores, as runc does: a profile written for a newer kernel names
// capabilities this one lacks.
func warnUnknownCaps(g *globals, caps *specs.LinuxCapabilities) {
	if names := spec.UnknownCapabilities(caps); len(names) > 0 {
		g.warn(fmt.Errorf("ignoring unknown capabilities: %s", strings.Join(names, ", ")))
	}
}
