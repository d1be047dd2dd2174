// Command lkc is the Linux Kernel Containers runtime. Its command line is
// runc's; `lkc init` is the role lkc takes inside a container being created.
//
// The Go runtime sizes GOMAXPROCS from the cgroup CPU quota, keeps the
// quota files open and re-reads them from sysmon. lkc sets GOMAXPROCS itself
// (internal/cli, and the env of `lkc init`), so that is work for nothing.
// (Go 1.26 still reads the quota once at start, for a metric.)
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"os"

	"github.com/lkc-containers/lkc/internal/cli"
	"github.com/lkc-containers/lkc/internal/cr"
	"github.com/lkc-containers/lkc/internal/initproc"
	_ "github.com/lkc-containers/lkc/internal/nsenter" // the namespace-joining constructor
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		os.Exit(initproc.Main())
	}
	if len(os.Args) > 1 && os.Args[1] == cr.NsLastPidArg {
		os.Exit(cr.NsLastPidMain(os.Args[2:]))
	}
	os.Exit(cli.Main(os.Args[1:]))
}
