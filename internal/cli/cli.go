// Package cli is lkc's command line: runc's commands, flags, output and exit
// codes, so containerd, Podman and Docker can drive lkc unchanged. Each
// subcommand parses its flags, calls one package function and prints; errors
// become one line on stderr (and in --log) and exit code 1.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Version is lkc's version, set at build time.
var Version = "dev"

// globals are the flags before the subcommand.
type globals struct {
	root          string
	rootSet       bool // --root was given, not the default
	log           string
	logFormat     string
	debug         bool
	systemdCgroup bool
	criu          string
	rootless      string
	logOut        io.Writer // the --log file once opened
}

type command struct {
	run   func(g *globals, args []string) error
	rt    goRuntime // the collector and Ps it runs with (see goRuntime)
	usage string
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"checkpoint": {cmdCheckpoint, brief, "checkpoint [flags] <container-id> | checkpoint --all --image-dir D: checkpoint a running container (or all of them) with CRIU"},
		"create":     {cmdCreate, brief, "create [flags] <container-id>: create a container from a bundle"},
		"delete":     {cmdDelete, brief, "delete [--force] <container-id>: delete a container"},
		"daemon":     {cmdDaemon, serving, "daemon [--detach] | daemon status|stop|reload|upgrade: the host daemon (docs/daemon.md)"},
		"events":     {cmdEvents, serving, "events [--stats] [--interval 5s] <container-id>: print stats and OOM events (JSON lines)"},
		"exec":       {cmdExec, forwarding, "exec [flags] <container-id> <command> [args...]: run a process in a container"},
		"group":      {cmdGroup, brief, "group create|update|exec|move|list|stats|delete ...: resource groups of host processes (docs/groups.md)"},
		"features":   {cmdFeatures, brief, "features: print what this lkc supports (JSON)"},
		"kill":       {cmdKill, brief, "kill [--all] <container-id> [signal]: signal a container"},
		"migrate":    {cmdMigrate, allocating, "migrate --token-file F [flags] <container-id>|--all <host:port>: move a running container (or all of them) to an lkc serve"},
		"limits":     {cmdLimits, brief, "limits [--json] [PID]: what a process may use: its cgroups' effective limits, rlimits and CPUs"},
		"network":    {cmdNetwork, brief, "network gc: DEL the CNI attachments of containers that are gone (docs/network.md)"},
		"list":       {cmdList, brief, "list [--format table|json] [-q]: list containers"},
		"pause":      {cmdPause, brief, "pause <container-id>: freeze every process of a container"},
		"ps":         {cmdPs, brief, "ps [--format table|json] <container-id> [ps options]: list a container's processes"},
		"restore":    {cmdRestore, brief, "restore [flags] <container-id> | restore --all --image-dir D: restore a container (or all of a checkpoint --all) from a checkpoint"},
		"rules":      {cmdRules, brief, "rules check FILE | rules explain PID: check a rules file (lkc's form or cgrules.conf, docs/groups.md); which rule placed a process and why"},
		"resume":     {cmdResume, brief, "resume <container-id>: thaw a paused container"},
		"run":        {cmdRun, forwarding, "run [flags] <container-id>: create and start a container"},
		"serve":      {cmdServe, serving, "serve --listen ADDR --token-file F [--bundle-dir D]: receive migrated containers"},
		"spec":       {cmdSpec, brief, "spec [--bundle dir]: write a default config.json"},
		"start":      {cmdStart, brief, "start <container-id>: start a created container"},
		"state":      {cmdState, brief, "state <container-id>: print a container's state (JSON)"},
		"stats":      {cmdStats, serving, "stats [--json] [--no-stream] [ID...]: containers' CPU, memory, pids, I/O, network and OOM kills, as docker stats"},
		"top":        {cmdTop, serving, "top [--once] [--json] [--sort COL]: live view of every container, sortable by each column"},
		"update":     {cmdUpdate, brief, "update [flags] <container-id>: change a container's cgroup limits live"},
	}
}

// exitError carries a process exit code out of a command without a message.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// failedWith gives a failure of a command its own exit code, printed as
// any failure: exec's is 255, as runc's, so a caller can tell it from an
// exit status of the process.
type failedWith struct {
	code int
	err  error
}

func (e failedWith) Error() string { return e.err.Error() }
func (e failedWith) Unwrap() error { return e.err }

// processExit makes the exit code of the container's process lkc's own.
func processExit(code int, err error) error {
	if err == nil && code != 0 {
		return exitError{code}
	}
	return err
}

// Main runs the command line args (without the program name) and returns
// the exit code.
func Main(args []string) int {
	g := &globals{}
	fs := newFlags("lkc")
	fs.StringVar(&g.root, "root", "/run/lkc", "directory for container state")
	fs.StringVar(&g.log, "log", "", "log file (default stderr only)")
	fs.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&g.debug, "debug", false, "log debug messages")
	fs.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "use systemd for cgroups (not supported)")
	fs.StringVar(&g.criu, "criu", "", "path to the criu binary")
	fs.StringVar(&g.rootless, "rootless", "auto", "rootless mode (only false/auto: lkc runs as root)")
	version := fs.Bool("version", false, "print the version")
	fs.BoolVar(version, "v", false, "print the version")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		usage(os.Stdout)
		return 0
	} else if err != nil {
		return fail(g, "", err)
	}
	fs.Visit(func(f *flag.Flag) { g.rootSet = g.rootSet || f.Name == "root" })
	if *version {
		fmt.Printf("lkc version %s\nspec: %s\n", Version, specVersion())
		return 0
	}
	rest := fs.Args()
	if len(rest) == 0 || rest[0] == "help" {
		usage(os.Stdout)
		return 0
	}
	cmd, ok := commands[rest[0]]
	if !ok {
		return fail(g, "", fmt.Errorf("unknown command %q (lkc help lists them)", rest[0]))
	}
	setGoRuntime(cmd.rt)
	if g.systemdCgroup {
		return fail(g, rest[0], errors.New("--systemd-cgroup is not supported: lkc manages cgroups through cgroupfs"))
	}
	if g.logFormat != "text" && g.logFormat != "json" {
		return fail(g, rest[0], fmt.Errorf("--log-format %q: use text or json", g.logFormat))
	}
	// Absolute, because the state directory is handed to CRIU and to
	// processes that run in other working directories.
	root, err := filepath.Abs(g.root)
	if err != nil {
		return fail(g, rest[0], fmt.Errorf("--root %q: %w", g.root, err))
	}
	g.root = root
	if g.debug {
		g.enableSteps()
		g.debugf("%s %s", rest[0], strings.Join(rest[1:], " "))
	}
	if err := cmd.run(g, rest[1:]); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		code := fail(g, rest[0], err)
		var fw failedWith
		if errors.As(err, &fw) {
			code = fw.code
		}
		return code
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: lkc [--root dir] [--log file] [--log-format text|json] [--debug] <command> ...")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintln(w, "  "+commands[n].usage)
	}
}

// fail prints err on one line, as callers parse it: an error joined from
// two (errors.Join), or naming a path with a newline, would spill over.
func fail(g *globals, cmd string, err error) int {
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	if cmd != "" {
		msg = cmd + ": " + msg
	}
	fmt.Fprintln(os.Stderr, "lkc: "+msg)
	g.logf("error", "%s", msg)
	return 1
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// subcommandHelp answers "<cmd> --help" of a command with subcommands as
// parse answers it for the others (clients probe commands that way): the
// usage on stdout and exit 0, through the error it returns.
func subcommandHelp(args []string, usage string) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Println("usage: " + usage)
		return exitError{0}
	}
	return nil
}

// nargs is how many positional arguments a command takes. Flags may come
// before, between or after them, as with runc, whose argument parser moves
// a command's flags ahead of its arguments, except where the arguments
// after the first belong to another program (exec's command, ps's
// options): there flags end at the first argument.
type nargs struct {
	min, max    int // max < 0: no limit
	passThrough bool
}

func exactly(n int) nargs { return nargs{min: n, max: n} }

// passThrough takes the container id and hands everything after it on.
var passThrough = nargs{min: 1, max: -1, passThrough: true}

// parse parses a subcommand's flags and checks its positional arguments.
func parse(fs *flag.FlagSet, args []string, n nargs, names string) ([]string, error) {
	rest, err := parseArgs(fs, args, n.passThrough)
	if errors.Is(err, flag.ErrHelp) {
		// Clients probe for a command with "<cmd> --help" and read exit 0
		// as "supported" (Podman does so for checkpoint), as with runc.
		fmt.Println("usage: " + names)
		fs.SetOutput(os.Stdout)
		fs.PrintDefaults()
		return nil, exitError{0}
	} else if err != nil {
		return nil, fmt.Errorf("%w (usage: %s)", err, names)
	}
	if len(rest) < n.min {
		return nil, fmt.Errorf("missing argument (usage: %s)", names)
	}
	if n.max >= 0 && len(rest) > n.max {
		return nil, fmt.Errorf("unexpected argument %q (usage: %s)", rest[n.max], names)
	}
	return rest, nil
}

// parseArgs parses flags wherever they are among args and returns the
// positional arguments, as urfave/cli (runc's parser) does: after the
// first positional argument, the command's own flags are taken wherever
// they are and anything else, "-1" or an unknown "--x", is an argument;
// "--" ends the flags. With firstOnly, flags end at the first positional
// argument.
func parseArgs(fs *flag.FlagSet, args []string, firstOnly bool) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	rest := fs.Args()
	if firstOnly || len(rest) == 0 || (len(rest) < len(args) && args[len(args)-len(rest)-1] == "--") {
		return rest, nil
	}
	pos := rest[:1:1]
	for i := 1; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			return append(pos, rest[i+1:]...), nil
		}
		f := knownFlag(fs, a)
		if f == nil {
			pos = append(pos, a)
			continue
		}
		n := 1
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); (!ok || !b.IsBoolFlag()) && !strings.Contains(a, "=") && i+1 < len(rest) {
			n = 2 // the flag's value
		}
		if err := fs.Parse(rest[i : i+n]); err != nil {
			return nil, err
		}
		i += n - 1
	}
	return pos, nil
}

// knownFlag returns fs's flag that arg ("-x", "--x" or "--x=v") names.
func knownFlag(fs *flag.FlagSet, arg string) *flag.Flag {
	name, ok := strings.CutPrefix(arg, "-")
	if !ok {
		return nil
	}
	name = strings.TrimPrefix(name, "-")
	name, _, _ = strings.Cut(name, "=")
	if name == "" {
		return nil
	}
	return fs.Lookup(name)
}
