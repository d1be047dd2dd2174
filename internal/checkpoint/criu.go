// Package checkpoint drives CRIU 4 over its swrk RPC: dump, pre-dump,
// restore, feature checks and the lazy-pages daemon. It knows CRIU, not
// containers: internal/container says what to dump and how to restore it.
// Nothing here prints; progress goes to the writer the caller gives.
package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrNoCriu marks a host without a working CRIU 4.
var ErrNoCriu = errors.New("no working CRIU 4")

// DefaultPath is where scripts/install-criu.sh puts CRIU 4.
const DefaultPath = "/opt/lkc/criu/criu"

// Env names the environment variable that overrides DefaultPath (the
// --criu flag overrides both).
const Env = "LKC_CRIU"

// installHint is what a user without CRIU 4 should run.
const installHint = "run scripts/install-criu.sh (CRIU 4 in /opt/lkc/criu), or pass --criu PATH or set " + Env

// Criu is a CRIU binary lkc talks to.
type Criu struct {
	Path string
	// launch, when set, is the command line that runs Path's CRIU without
	// its shell wrapper (see launchFile).
	launch []string
}

// launchFile, next to a wrapper script, holds the command line the
// wrapper execs, NUL-separated (scripts/install-criu.sh writes one): lkc
// runs that itself, and spares each CRIU start the shell, 2-3 ms here,
// most of a migration's downtime being three of them (dump, lazy-pages
// daemon, restore).
const launchFile = ".launch"

// command returns the command that runs CRIU with args.
func (cr *Criu) command(args ...string) *exec.Cmd {
	if len(cr.launch) == 0 {
		return exec.Command(cr.Path, args...)
	}
	return exec.Command(cr.launch[0], append(cr.launch[1:], args...)...)
}

// newCriu reads path's launch file, if it has one.
func newCriu(path string) *Criu {
	cr := &Criu{Path: path}
	data, err := os.ReadFile(path + launchFile)
	if err != nil {
		return cr
	}
	argv := strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
	if len(argv) > 1 && filepath.IsAbs(argv[0]) {
		cr.launch = argv
	}
	return cr
}

// Find returns the CRIU to use: path when given, else $LKC_CRIU, else
// DefaultPath, else a `criu` on PATH that is at least version 4 (Debian 12's
// 3.17 cannot even start on current kernels).
func Find(path string) (*Criu, error) {
	for _, p := range []string{path, os.Getenv(Env)} {
		if p != "" {
			return usable(p)
		}
	}
	if _, err := os.Stat(DefaultPath); err == nil {
		return newCriu(DefaultPath), nil
	}
	p, err := exec.LookPath("criu")
	if err != nil {
		return nil, fmt.Errorf("%w: no CRIU at %s or on PATH: %s", ErrNoCriu, DefaultPath, installHint)
	}
	cr := newCriu(p)
	v, err := cr.Version()
	if err != nil {
		return nil, err
	}
	if v[0] < 4 {
		return nil, fmt.Errorf("%w: %s is CRIU %d.%d, which does not work on this kernel: %s", ErrNoCriu, p, v[0], v[1], installHint)
	}
	return cr, nil
}

func usable(p string) (*Criu, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %v: %s", ErrNoCriu, err, installHint)
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("%w: %s is not an executable: %s", ErrNoCriu, p, installHint)
	}
	return newCriu(p), nil
}

// Version asks CRIU for its version: major, minor, sublevel.
func (cr *Criu) Version() ([3]int, error) {
	resp, err := cr.run(&Request{typ: reqVersion})
	if err != nil {
		return [3]int{}, fmt.Errorf("%w: %s does not answer: %v: %s", ErrNoCriu, cr.Path, err, installHint)
	}
	v := resp.GetVersion()
	return [3]int{int(v.GetMajorNumber()), int(v.GetMinorNumber()), int(v.GetSublevel())}, nil
}

// Features reports which of the features in want CRIU and the kernel
// support. (go-criu's FeatureCheck returns the request unchanged; this reads
// CRIU's answer.)
func (cr *Criu) Features(want Features) (Features, error) {
	resp, err := cr.run(&Request{typ: reqFeatureCheck, feat: &want})
	if err != nil {
		return Features{}, fmt.Errorf("%w: feature check: %v", ErrNoCriu, err)
	}
	f := resp.GetFeatures()
	return Features{MemTrack: f.GetMemTrack(), LazyPages: f.GetLazyPages()}, nil
}

// Dump checkpoints the tree rooted at r.Opts.Pid into the images directory.
func (cr *Criu) Dump(r *Request) error {
	r.typ = reqDump
	return cr.dump(r)
}

// PreDump copies memory of the running tree without stopping it for long,
// for a later dump with ParentImg pointing here. It needs the kernel's
// soft-dirty tracking.
func (cr *Criu) PreDump(r *Request) error {
	r.typ = reqPreDump
	return cr.dump(r)
}

// dump runs a dump or pre-dump, sending the pages on r.PageServer when
// set.
func (cr *Criu) dump(r *Request) error {
	if r.PageServer != nil {
		r.Opts.PageServerFd = r.AddFile(r.PageServer.File())
	}
	_, err := cr.run(r)
	return r.PageServer.explain(err)
}

// Restore restores the images and returns the host pid of the root task.
func (cr *Criu) Restore(r *Request) (int, error) {
	r.typ = reqRestore
	resp, err := cr.run(r)
	if err != nil {
		return 0, err
	}
	return int(resp.GetRestore().GetPid()), nil
}
