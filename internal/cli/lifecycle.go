package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/container"
)

func cmdStart(g *globals, args []string) error {
	rest, err := parse(newFlags("start"), args, exactly(1), "lkc start <container-id>")
	if err != nil {
		return err
	}
	return container.Start(g.root, rest[0], g.warn)
}

func cmdState(g *globals, args []string) error {
	fs := newFlags("state")
	check := fs.Bool("check", false, "first run CNI CHECK of the container's networks, and fail if one is not as ADD made it (docs/network.md)")
	rest, err := parse(fs, args, exactly(1), "lkc state [--check] <container-id>")
	if err != nil {
		return err
	}
	if *check {
		if err := container.CheckNetwork(g.root, rest[0]); err != nil {
			return err
		}
	}
	s, err := container.State(g.root, rest[0])
	if err != nil {
		return err
	}
	return printJSON(s)
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdList(g *globals, args []string) error {
	var format string
	var quiet bool
	fs := newFlags("list")
	fs.StringVar(&format, "format", "table", "table or json")
	fs.StringVar(&format, "f", "table", "table or json")
	fs.BoolVar(&quiet, "quiet", false, "print only the ids")
	fs.BoolVar(&quiet, "q", false, "print only the ids")
	if _, err := parse(fs, args, exactly(0), "lkc list [--format table|json] [-q]"); err != nil {
		return err
	}
	if format != "table" && format != "json" {
		return fmt.Errorf("--format %q: use table or json", format)
	}
	states, err := container.List(g.root, g.warn)
	if err != nil {
		return err
	}
	switch {
	case quiet:
		for _, s := range states {
			fmt.Println(s.ID)
		}
	case format == "json":
		return json.NewEncoder(os.Stdout).Encode(states)
	default:
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, s := range states {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle,
				s.Created.Format(time.RFC3339Nano), s.Owner)
		}
		return w.Flush()
	}
	return nil
}

func cmdKill(g *globals, args []string) error {
	var all bool
	fs := newFlags("kill")
	fs.BoolVar(&all, "all", false, "signal every process of the container")
	fs.BoolVar(&all, "a", false, "signal every process of the container")
	rest, err := parse(fs, args, nargs{min: 1, max: 2}, "lkc kill [--all] <container-id> [signal]")
	if err != nil {
		return err
	}
	sig := unix.SIGTERM
	if len(rest) > 1 && rest[1] != "" {
		if sig, err = parseSignal(rest[1]); err != nil {
			return err
		}
	}
	return container.Kill(g.root, rest[0], sig, all)
}

// parseSignal accepts "9", "KILL", "SIGKILL" and "kill", and "0", which
// runc takes as a check that init lives: nothing is sent, and the kill
// fails only when the container is stopped. An empty signal is SIGTERM
// (cmdKill), as in runc.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, fmt.Errorf("invalid signal %q", s)
	}
	return sig, nil
}

func cmdDelete(g *globals, args []string) error {
	var force bool
	fs := newFlags("delete")
	fs.BoolVar(&force, "force", false, "kill the container first if it runs")
	fs.BoolVar(&force, "f", false, "kill the container first if it runs")
	rest, err := parse(fs, args, exactly(1), "lkc delete [--force] <container-id>")
	if err != nil {
		return err
	}
	dir := servedBy(g.root, rest[0])
	if err := container.Delete(g.root, rest[0], force, g.warn); err != nil {
		return err
	}
	if dir != "" {
		releaseFrom(dir, g.root, rest[0], 0)
	}
	return nil
}
