package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/lkc-containers/lkc/internal/container"
)

func cmdPause(g *globals, args []string) error {
	rest, err := parse(newFlags("pause"), args, exactly(1), "lkc pause <container-id>")
	if err != nil {
		return err
	}
	return container.Pause(g.root, rest[0])
}

func cmdResume(g *globals, args []string) error {
	rest, err := parse(newFlags("resume"), args, exactly(1), "lkc resume <container-id>")
	if err != nil {
		return err
	}
	return container.Resume(g.root, rest[0])
}

// cmdPs prints the container's processes like runc: `ps` output (with the
// given ps options, default -ef) filtered to them, or their pids as JSON.
func cmdPs(g *globals, args []string) error {
	var format string
	fs := newFlags("ps")
	fs.StringVar(&format, "format", "table", "table or json")
	fs.StringVar(&format, "f", "table", "table or json")
	rest, err := parse(fs, args, passThrough, "lkc ps [--format table|json] <container-id> [ps options]")
	if err != nil {
		return err
	}
	if format != "table" && format != "json" {
		return fmt.Errorf("--format %q: use table or json", format)
	}
	pids, err := container.Processes(g.root, rest[0])
	if err != nil {
		return err
	}
	if format == "json" {
		if pids == nil {
			pids = []int{}
		}
		return json.NewEncoder(os.Stdout).Encode(pids)
	}
	psArgs := rest[1:]
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return fmt.Errorf("running ps %s: %w%s", strings.Join(psArgs, " "), err, psComplaint(err))
	}
	return printPsLines(string(out), pids)
}

// psComplaint is the first line ps wrote to its stderr before failing,
// which says what it took amiss (runc prints all of it), as ": line".
func psComplaint(err error) string {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return ""
	}
	for _, line := range strings.Split(string(ee.Stderr), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return ": " + line
		}
	}
	return ""
}

// printPsLines prints ps's header and the lines whose PID column is one of pids.
func printPsLines(out string, pids []int) error {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return fmt.Errorf("ps output has no PID column")
	}
	want := map[string]bool{}
	for _, p := range pids {
		want[strconv.Itoa(p)] = true
	}
	fmt.Println(lines[0])
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > col && want[f[col]] {
			fmt.Println(l)
		}
	}
	return nil
}
