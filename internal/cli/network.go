package cli

import (
	"context"
	"fmt"

	"github.com/lkc-containers/lkc/internal/network"
)

// networkUsage lists the subcommands of `lkc network`.
const networkUsage = "lkc network gc"

// cmdNetwork runs `lkc network gc`: the DEL of every CNI attachment whose
// container is gone (docs/network.md). It prints one summary line; a DEL
// that failed fails the command once the others are collected.
func cmdNetwork(g *globals, args []string) error {
	if err := subcommandHelp(args, networkUsage); err != nil {
		return err
	}
	if len(args) != 1 || args[0] != "gc" {
		return fmt.Errorf("want the subcommand gc (usage: %s)", networkUsage)
	}
	c, err := network.Collect(context.Background(), network.CacheDir())
	if c != nil {
		fmt.Println("network gc: " + c.String())
	}
	return err
}
