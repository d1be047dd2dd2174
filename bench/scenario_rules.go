package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lkc-containers/lkc/internal/cgroups"
)

const (
	rulesRate   = 1000            // execs per second, the storm
	rulesWindow = 2 * time.Second // one run: this long at rulesRate
	rulesGroup  = "rules"         // the lkc group and the cgrules destination's last part
	// The files cgrulesengd reads; the scenario makes them and removes
	// them, and refuses to run when the host has its own.
	cgrulesConf, cgconfigConf, cgconfigDir = "/etc/cgrules.conf", "/etc/cgconfig.conf", "/etc/cgconfig.d"
	// cgredSocket is where cgrulesengd listens.
	cgredSocket = "/run/cgred.socket"
)

// rulesScenario measures a rules engine under a storm of 1,000 execs per
// second of a program a rule places: exec→in-group latency, the engine's
// CPU, and escapees, lkc's engine against libcgroup's cgrulesengd on the
// same rule, one engine running at a time.
func rulesScenario() Scenario {
	return Scenario{
		Name:   "rules",
		Desc:   fmt.Sprintf("a %v storm of %d execs/s of a probe a rule places, each forking a child at once: wall = every exec's kernel EXEC event -> the probe sees itself in the group; cpu = the engine's CPU ms per s of storm", rulesWindow, rulesRate),
		Ratios: [][2]string{{"lkc", "cgrulesengd"}, {"lkc", "lkc-base"}},
		Variants: func(env *Env) []Variant {
			lab := &rulesLab{env: env}
			vs := []Variant{rulesVariant(lab, "lkc", env.LKC), cgrulesVariant(lab)}
			if env.Baseline != "" {
				vs = append(vs, rulesVariant(lab, "lkc-base", env.Baseline))
			}
			return vs
		},
	}
}

// rulesLab is what the rules variants share: the probe, the scope cgroup
// the generator runs in, the group's cgroup, and lkc's configuration.
// The first Prepare sets it up, the last Cleanup takes it down.
type rulesLab struct {
	env     *Env
	mu      sync.Mutex
	users   int
	dir     string // the lab's files
	probe   string
	base    string // absolute cgroup path of the lab, beneath the own cgroup
	scope   string
	parent  string // groups.parent
	target  string // the group's cgroup path
	hier    []string
	environ []string // LKC_CONFIG and LKC_DAEMON_DIR of the lab's lkc
	// mountedTracefs says the lab mounted tracefs (a host without systemd
	// may have none) and unmounts it at its teardown.
	mountedTracefs bool
}

func (l *rulesLab) acquire() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.users == 0 {
		if err := l.setup(); err != nil {
			l.teardown()
			return err
		}
	}
	l.users++
	return nil
}

func (l *rulesLab) release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.users--; l.users > 0 {
		return nil
	}
	return l.teardown()
}

func (l *rulesLab) setup() error {
	own, err := ownCgroupBase()
	if err != nil {
		return err
	}
	if l.mountedTracefs, err = ensureTracefs(); err != nil {
		return err
	}
	l.dir = filepath.Join(l.env.Dir, "rules")
	l.base = filepath.Join(own, l.env.IDPrefix+"-rules")
	l.scope, l.parent = l.base+"/scope", l.base+"/groups"
	l.target = l.parent + "/" + rulesGroup
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return err
	}
	l.probe = filepath.Join(l.dir, "lkc-rules-probe")
	if err := buildProbe(l.probe); err != nil {
		return err
	}
	m, err := cgroups.New(cgroups.DefaultHost, l.scope)
	if err == nil {
		err = m.Create() // fills cpuset's cpus and mems: it takes processes
	}
	if err != nil {
		return fmt.Errorf("scope cgroup %s: %w", l.scope, err)
	}
	conf := filepath.Join(l.dir, "lkc.conf")
	rulesFile := filepath.Join(l.dir, "rules.conf")
	text := fmt.Sprintf("groups.dir = %s\ngroups.parent = %s\nrules.files = %s\nrules.scope = %s\n",
		filepath.Join(l.dir, "groups"), l.parent, rulesFile, l.scope)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(rulesFile, []byte("exe="+l.probe+" -> group="+rulesGroup+"\n"), 0o644); err != nil {
		return err
	}
	l.environ = append(os.Environ(), "LKC_CONFIG="+conf, "LKC_DAEMON_DIR="+filepath.Join(l.dir, "lkcd"))
	if out, err := l.lkc(l.env.LKC, "group", "create", rulesGroup).CombinedOutput(); err != nil {
		return fmt.Errorf("lkc group create: %w: %s", err, strings.TrimSpace(string(out)))
	}
	l.hier = groupHierarchies(l.target)
	if len(l.hier) == 0 {
		return errors.New("lkc group create made no cgroup")
	}
	return nil
}

// buildProbe compiles bench/rulesprobe/probe.c statically (musl when the
// host has it: a smaller, faster exec).
func buildProbe(out string) error {
	cc := "musl-gcc"
	if _, err := exec.LookPath(cc); err != nil {
		cc = "cc"
	}
	b, err := exec.Command(cc, "-static", "-O2", "-o", out, "bench/rulesprobe/probe.c").CombinedOutput()
	if err != nil {
		return fmt.Errorf("building the probe with %s: %w: %s", cc, err, strings.TrimSpace(string(b)))
	}
	return nil
}

// groupHierarchies lists the v1 hierarchies (their directory names under
// /sys/fs/cgroup, which are their controllers) holding path: where lkc
// made the group, so the cgrulesengd rule names the same ones.
func groupHierarchies(path string) []string {
	ents, _ := os.ReadDir(cgroupRoot)
	var out []string
	for _, e := range ents {
		if e.IsDir() && e.Name() != "unified" && e.Name() != "systemd" {
			if _, err := os.Stat(filepath.Join(cgroupRoot, e.Name(), path)); err == nil {
				out = append(out, e.Name())
			}
		}
	}
	return out
}

// dirs is an absolute cgroup path's directory in each of the group's
// hierarchies.
func (l *rulesLab) dirs(path string) []string {
	var out []string
	for _, h := range l.hier {
		out = append(out, filepath.Join(cgroupRoot, h, path))
	}
	return out
}

func (l *rulesLab) lkc(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = l.environ
	return cmd
}

// teardown kills whatever is left in the lab's cgroups, removes them
// (deepest first, in every hierarchy) and the parents made above them.
func (l *rulesLab) teardown() error {
	if l.mountedTracefs {
		l.mountedTracefs = false
		defer unmountTracefs()
	}
	if l.base == "" {
		return nil
	}
	var errs []error
	ents, _ := os.ReadDir(cgroupRoot)
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		root := filepath.Join(cgroupRoot, e.Name(), l.base)
		if _, err := os.Stat(root); err != nil {
			continue
		}
		// findDirs lists parents before their children: remove backwards.
		dirs := append([]string{root}, findDirs(root, "", sweepMaxDepth)...)
		for _, d := range dirs {
			killCgroup(d)
		}
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("removing %s: %w", dirs[i], err))
			}
		}
	}
	removeEmptyAbove(cgroupRoot, filepath.Dir(l.base))
	return errors.Join(errs...)
}

// killCgroup SIGKILLs the processes of cgroup dir until it is empty (a
// second at most).
func killCgroup(dir string) {
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		pids := readPids(filepath.Join(dir, "cgroup.procs"))
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
	}
}

// rulesVariant measures lkc's rules engine: its daemon (the lab's
// configuration) starts before each storm and stops after it.
func rulesVariant(lab *rulesLab, name, bin string) Variant {
	d := &lkcEngine{lab: lab, bin: bin}
	tally := &stormTally{}
	return Variant{
		Name:    name,
		Desc:    "lkc daemon's rules engine (" + bin + "), rule exe=PROBE -> group=" + rulesGroup + ", rules.scope the generator's cgroup; cpu = worker + holder",
		Prepare: func() (string, error) { return "", lab.acquire() },
		Run: func(ctx context.Context, _ int) (Sample, error) {
			return lab.storm(ctx, d, tally)
		},
		Notes:   tally.String,
		Cleanup: func() error { d.stop(); return lab.release() },
	}
}

// cgrulesVariant measures libcgroup's cgrulesengd on the same rule in
// cgrules.conf's form, started before each storm and stopped after it.
func cgrulesVariant(lab *rulesLab) Variant {
	d := &cgrulesEngine{lab: lab}
	tally := &stormTally{}
	return Variant{
		Name: "cgrulesengd",
		Desc: "libcgroup's cgrulesengd -n -q (Debian cgroup-tools), /etc/cgrules.conf holding only '*:PROBE <the group's hierarchies> <the group's cgroup>'",
		Prepare: func() (string, error) {
			if err := d.prepare(); err != nil {
				return "", err
			}
			if err := lab.acquire(); err != nil {
				d.remove()
				return "", err
			}
			return d.version(), d.writeRule()
		},
		Run: func(ctx context.Context, _ int) (Sample, error) {
			return lab.storm(ctx, d, tally)
		},
		Notes:   tally.String,
		Cleanup: func() error { d.stop(); d.remove(); return lab.release() },
	}
}
