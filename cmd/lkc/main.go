// Command lkc is the Linux Kernel Containers runtime. Its command line is
// runc's; `lkc init` is the role lkc takes inside a container being created.
package main

import (
	"os"

	"github.com/lkc-containers/lkc/internal/cli"
	"github.com/lkc-containers/lkc/internal/initproc"
	_ "github.com/lkc-containers/lkc/internal/nsenter" // the namespace-joining constructor
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		os.Exit(initproc.Main())
	}
	os.Exit(cli.Main(os.Args[1:]))
}
