package cli

import (
	"fmt"
	"os"

	"github.com/lkc-containers/lkc/internal/rules"
)

// rulesUsage lists the subcommands of `lkc rules`.
const rulesUsage = "lkc rules check FILE"

// cmdRules runs `lkc rules check FILE`: it parses a rules file (lkc's form
// or cgrules.conf) with the package the rules engine uses, fails on the
// first syntax error with its file:line, prints each rule with its line,
// and warns (without failing) about users and groups this host lacks.
func cmdRules(g *globals, args []string) error {
	if err := subcommandHelp(args, rulesUsage); err != nil {
		return err
	}
	if len(args) != 2 || args[0] != "check" {
		return fmt.Errorf("want a subcommand (usage: %s)", rulesUsage)
	}
	f, err := os.Open(args[1])
	if err != nil {
		return err
	}
	defer f.Close()
	rs, err := rules.Parse(f, args[1])
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
	for _, w := range rules.Unknown(rs, rules.ParseUsers(passwd, group)) {
		fmt.Fprintln(os.Stderr, "lkc: rules: warning: "+w)
	}
	fmt.Printf("%s: %d rules\n", args[1], len(rs))
	return nil
}
