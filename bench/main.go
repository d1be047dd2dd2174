// Command bench measures container lifecycle latency of lkc side by side
// with runc and crun. Run it through bench/run; docs/bench.md explains what
// is measured and why.
//
// The binary has three roles, chosen by the LKC_BENCH_ROLE environment
// variable: the outer process (no role) owns the temporary directory and the
// final cleanup; it re-executes itself in a private mount namespace as the
// "measure" role, which runs every scenario; the "floor" role is the bare
// namespace+pivot_root+exec reference started by the floor variant; the
// "reader" role times /proc reads inside the proc scenarios' containers;
// the "netpeer" role serves the net-rate scenario's echo and bulk stream.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

const (
	roleEnv     = "LKC_BENCH_ROLE"
	dirEnv      = "LKC_BENCH_DIR"
	roleMeasure = "measure"
	roleFloor   = "floor"
	roleReader  = "reader"
	// roleRulesGen is the rules scenario's exec storm generator.
	roleRulesGen = "rulesgen"
)

func main() {
	code, err := dispatch(os.Getenv(roleEnv))
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
	}
	os.Exit(code)
}

func dispatch(role string) (int, error) {
	switch role {
	case "":
		return outerMain(os.Args[1:])
	case roleMeasure:
		return exitCode(measureMain(os.Args[1:], os.Getenv(dirEnv)))
	case roleFloor:
		return exitCode(floorMain(os.Getenv(rootfsEnv)))
	case roleReader:
		return exitCode(readerMain(os.Args[1:]))
	case roleRulesGen:
		return exitCode(rulesgenMain(os.Args[1:]))
	case roleNetPeer:
		return exitCode(netPeerMain())
	default:
		return 2, fmt.Errorf("unknown %s %q", roleEnv, role)
	}
}

func exitCode(err error) (int, error) {
	switch {
	case err == nil:
		return 0, nil
	case errors.Is(err, flag.ErrHelp):
		return 0, nil
	default:
		return 1, err
	}
}
