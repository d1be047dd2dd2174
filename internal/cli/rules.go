package cli

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/groups"
	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/rules"
	"github.com/lkc-containers/lkc/internal/rulesengine"
)

// rulesUsage lists the subcommands of `lkc rules`.
const rulesUsage = "lkc rules check FILE | lkc rules explain PID"

// cmdRules runs `lkc rules check FILE` and `lkc rules explain PID`.
func cmdRules(g *globals, args []string) error {
	if err := subcommandHelp(args, rulesUsage); err != nil {
		return err
	}
	if len(args) != 2 {
		return fmt.Errorf("want a subcommand and its argument (usage: %s)", rulesUsage)
	}
	switch args[0] {
	case "check":
		return rulesCheck(args[1])
	case "explain":
		return rulesExplain(args[1])
	}
	return fmt.Errorf("unknown subcommand %q (usage: %s)", args[0], rulesUsage)
}

// rulesCheck parses a rules file (lkc's form or cgrules.conf) with the
// package the rules engine uses, fails on the first syntax error with its
// file:line, prints each rule with its line, and warns (without failing)
// about cgrules fields after the 4th (ignored), users and groups this
// host lacks, and resource groups not defined (by the host's lkc.conf).
func rulesCheck(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	rs, err := rules.Parse(f, file)
	if err != nil {
		return err
	}
	for _, r := range rs {
		fmt.Printf("%s:%d: %s\n", r.File, r.Line, r.Text)
		for _, t := range r.Targets[min(1, len(r.Targets)):] {
			fmt.Printf("    and %s %s in %v (a %% line)\n", t.Kind, t.Name, t.Controllers)
		}
	}
	passwd, _ := os.Open("/etc/passwd")
	group, _ := os.Open("/etc/group")
	defer passwd.Close()
	defer group.Close()
	warnings := append(rules.ExtraFields(rs), rules.Unknown(rs, rules.ParseUsers(passwd, group))...)
	if conf, err := hostconf.Load(); err == nil {
		warnings = append(warnings, rulesengine.MissingGroups(rs, groups.FromConf(conf))...)
	}
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "lkc: rules: warning: "+w)
	}
	fmt.Printf("%s: %d rules\n", file, len(rs))
	return nil
}

// rulesExplain asks the daemon's rules engine which rule placed a
// process and why; without a running daemon it matches the rules itself
// (and says the process was not acted on).
func rulesExplain(arg string) error {
	pid, err := strconv.Atoi(arg)
	if err != nil || pid <= 0 {
		return fmt.Errorf("explain: %q is not a process id", arg)
	}
	conf, err := hostconf.Load()
	if err != nil {
		return err
	}
	var r *daemonapi.ExplainReply
	cl, err := daemonapi.Dial(conf.DaemonDirectory())
	switch {
	case err == nil:
		defer cl.Close()
		r, err = cl.Explain(pid)
	case errors.Is(err, daemonapi.ErrNotRunning):
		r, err = explainHere(conf, pid)
	}
	if err != nil {
		return fmt.Errorf("explain %d: %w", pid, err)
	}
	if r.Rule == "" {
		fmt.Printf("pid %d: no rule matches (%s)\n", pid, r.Action)
		return nil
	}
	fmt.Printf("pid %d: rule %s\n", pid, r.Rule)
	for _, w := range r.Why {
		fmt.Printf("  because %s\n", w)
	}
	for _, t := range r.Targets {
		fmt.Printf("  target %s\n", t)
	}
	fmt.Printf("  %s", r.Action)
	if r.When != "" {
		fmt.Printf(" at %s", r.When)
	}
	fmt.Println()
	return nil
}

// explainHere matches the configured rules without the daemon.
func explainHere(conf *hostconf.Conf, pid int) (*daemonapi.ExplainReply, error) {
	eng, err := rulesengine.NewEngine(cgroups.DefaultHost, nil, nil)
	if err != nil {
		return nil, err
	}
	if err := eng.Load(conf); err != nil {
		return nil, err
	}
	r, err := eng.Explain(pid)
	if err == nil {
		r.Action = "the daemon is not running, so nothing places it"
	}
	return r, err
}
