package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/container"
	"github.com/lkc-containers/lkc/internal/spec"
)

// multi is a flag that may be given many times.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

type execFlags struct {
	consoleSocket, cwd, user, processFile, pidFile, apparmor, label string
	env, gids, caps, cgroups                                        multi
	tty, detach, noNewPrivs, ignorePaused                           bool
	preserveFDs                                                     int
}

func cmdExec(g *globals, args []string) error {
	var f execFlags
	fs := newFlags("exec")
	fs.StringVar(&f.consoleSocket, "console-socket", "", "unix socket to send the terminal master to")
	fs.StringVar(&f.cwd, "cwd", "", "working directory in the container")
	fs.Var(&f.env, "env", "set an environment variable (repeatable)")
	fs.Var(&f.env, "e", "set an environment variable (repeatable)")
	fs.BoolVar(&f.tty, "tty", false, "allocate a terminal")
	fs.BoolVar(&f.tty, "t", false, "allocate a terminal")
	fs.StringVar(&f.user, "user", "", "uid[:gid] to run as")
	fs.StringVar(&f.user, "u", "", "uid[:gid] to run as")
	fs.Var(&f.gids, "additional-gids", "additional gid (repeatable)")
	fs.Var(&f.gids, "g", "additional gid (repeatable)")
	fs.StringVar(&f.processFile, "process", "", "runtime-spec process JSON file")
	fs.StringVar(&f.processFile, "p", "", "runtime-spec process JSON file")
	fs.BoolVar(&f.detach, "detach", false, "do not wait for the process")
	fs.BoolVar(&f.detach, "d", false, "do not wait for the process")
	fs.StringVar(&f.pidFile, "pid-file", "", "file to write the process pid to")
	fs.StringVar(&f.label, "process-label", "", "SELinux label of the process")
	fs.StringVar(&f.apparmor, "apparmor", "", "AppArmor profile of the process")
	fs.BoolVar(&f.noNewPrivs, "no-new-privs", false, "set no_new_privs")
	fs.Var(&f.caps, "cap", "add a capability (repeatable)")
	fs.Var(&f.caps, "c", "add a capability (repeatable)")
	fs.IntVar(&f.preserveFDs, "preserve-fds", 0, "pass this many fds after stdio to the process")
	fs.Var(&f.cgroups, "cgroup", "run in an existing sub-cgroup: [controllers:]path (repeatable)")
	fs.BoolVar(&f.ignorePaused, "ignore-paused", false, "exec in a paused container too: the process waits frozen for resume")
	rest, err := parse(fs, args, passThrough, "lkc exec [flags] <container-id> <command> [args...]")
	if err != nil {
		return err
	}
	o, err := f.opts(g, rest[0], rest[1:])
	if err == nil {
		err = processExit(container.Exec(o))
	}
	var ee exitError
	if err != nil && !errors.As(err, &ee) {
		return failedWith{execFailed, err}
	}
	return err
}

// execFailed is exec's exit code when no process ran or lkc could not
// wait for it, runc's 255: an exit status of the process is 0-255 too,
// but 255 is rare there, and 1, lkc's usual failure code, is common.
const execFailed = 255

func (f *execFlags) opts(g *globals, id string, args []string) (container.ExecOpts, error) {
	o := container.ExecOpts{Root: g.root, ID: id, Detach: f.detach, ConsoleSocket: f.consoleSocket, PreserveFDs: f.preserveFDs, IgnorePaused: f.ignorePaused,
		Listener: execListener(g)}
	if f.preserveFDs < 0 {
		return o, fmt.Errorf("--preserve-fds %d is negative", f.preserveFDs)
	}
	if err := checkPreserved(f.preserveFDs); err != nil {
		return o, err
	}
	sub, err := cgroups.ParseSub(f.cgroups)
	if err != nil {
		return o, err
	}
	o.Cgroup = sub
	if f.pidFile != "" {
		abs, err := absPath(f.pidFile)
		if err != nil {
			return o, err
		}
		o.PidFile = abs
	}
	if f.processFile != "" {
		p, err := processFromFile(g, f.processFile)
		if err != nil {
			return o, err
		}
		p.Terminal = p.Terminal || f.tty
		f.confine(p)
		o.Process = *p
		return o, nil
	}
	if len(args) == 0 {
		return o, errors.New("missing command (usage: lkc exec [flags] <container-id> <command> [args...])")
	}
	if f.cwd != "" && !filepath.IsAbs(f.cwd) {
		return o, fmt.Errorf("--cwd %q: not an absolute path (the runtime spec's process.cwd is absolute)", f.cwd)
	}
	o.Change, err = f.change(args)
	return o, err
}

// confine applies --apparmor and --process-label, which override the
// profile and label the process has.
func (f *execFlags) confine(p *config.Process) {
	if f.apparmor != "" {
		p.ApparmorProfile = f.apparmor
	}
	if f.label != "" {
		p.SelinuxLabel = f.label
	}
}

func processFromFile(g *globals, path string) (*config.Process, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--process: %w", err)
	}
	defer f.Close()
	p, err := spec.ParseProcess(f)
	if err != nil {
		return nil, fmt.Errorf("--process %s: %w", path, err)
	}
	warnUnknownCaps(g, p.Capabilities)
	return spec.ConvertProcess(p)
}

// change checks the flags that shape the process and returns what applies
// them to the container's own process.
func (f *execFlags) change(args []string) (func(*config.Process) error, error) {
	var uid uint32
	var gid *uint32
	if f.user != "" {
		var err error
		if uid, gid, err = parseUser(f.user); err != nil {
			return nil, err
		}
	}
	for _, e := range f.env {
		if name, _, ok := strings.Cut(e, "="); !ok || name == "" {
			return nil, fmt.Errorf("--env %q: want NAME=VALUE", e)
		}
	}
	gids := make([]uint32, 0, len(f.gids))
	for _, s := range f.gids {
		g, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--additional-gids %q: not a number", s)
		}
		gids = append(gids, uint32(g))
	}
	return func(p *config.Process) error {
		p.Args = args
		p.Env = append(p.Env, f.env...)
		f.confine(p)
		if f.cwd != "" {
			p.Cwd = f.cwd
		}
		if f.user != "" {
			p.UID = uid
		}
		if gid != nil {
			p.GID = *gid
		}
		p.AdditionalGids = append(p.AdditionalGids, gids...)
		p.NoNewPrivileges = p.NoNewPrivileges || f.noNewPrivs
		p.Terminal = f.tty
		if len(f.caps) > 0 {
			return addCaps(p, f.caps)
		}
		return nil
	}, nil
}

// parseUser parses "uid[:gid]"; without a gid (nil) the process keeps
// the container's, as in runc.
func parseUser(s string) (uint32, *uint32, error) {
	u, g, hasGID := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return 0, nil, fmt.Errorf("--user %q: want uid[:gid] as numbers", s)
	}
	if !hasGID {
		return uint32(uid), nil, nil
	}
	gid, err := strconv.ParseUint(g, 10, 32)
	if err != nil {
		return 0, nil, fmt.Errorf("--user %q: want uid[:gid] as numbers", s)
	}
	g32 := uint32(gid)
	return uint32(uid), &g32, nil
}

// addCaps adds capabilities to the bounding, effective and permitted sets.
func addCaps(p *config.Process, names []string) error {
	nums, err := spec.CapabilityNumbers(names)
	if err != nil {
		return err
	}
	if p.Capabilities == nil {
		return nil // no capability config: the process keeps them all
	}
	caps := *p.Capabilities
	caps.Bounding = append(append([]int(nil), caps.Bounding...), nums...)
	caps.Effective = append(append([]int(nil), caps.Effective...), nums...)
	caps.Permitted = append(append([]int(nil), caps.Permitted...), nums...)
	p.Capabilities = &caps
	return nil
}
