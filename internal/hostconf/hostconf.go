// Package hostconf reads the host's lkc configuration, /etc/lkc/lkc.conf:
// `key = value` lines with `#` comments, and the defaults of every key. It
// is its one reason to change: the file's format and its defaults. An
// unknown key or a bad value is an error naming the line, because a typo
// must not silently turn a policy off.
package hostconf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// DefaultPath is where the host configuration lives.
const DefaultPath = "/etc/lkc/lkc.conf"

// Conf is the host configuration. Every field holds its default when the
// file does not set it (see Default).
type Conf struct {
	DaemonDir       string // daemon.dir: the daemon's run directory
	Autostart       bool   // daemon.autostart: the CLI may start the daemon
	DaemonLog       string // daemon.log
	ProcDefault     string // proc.default: off or virtual
	ProcSysinfo     bool   // proc.sysinfo
	ProcAffinity    bool   // proc.affinity
	OOMDefault      string // oom.default: a policy (see ValidPolicy)
	OOMFallback     string // oom.fallback
	OOMDeadline     time.Duration
	OOMGrowReserve  string // oom.grow-reserve: a percentage of RAM or a size
	OOMCheckpointTo string // oom.checkpoint-dir
	GroupsDir       string
	GroupsParent    string
	RulesFiles      []string
	RulesCgrules    string
	RulesScope      []string
	RulesRoots      []string // rules.roots: the lkc roots container= targets are looked up in
	// RulesTemplateIdle (rules.template-idle) is how long a group the
	// rules engine made from a template (group=java/%u) stays empty
	// before the engine removes it; 0 keeps such groups for good.
	RulesTemplateIdle time.Duration
	MetricsListen     string   // metrics.listen: HOST:PORT, or empty for no endpoint
	MetricsRoots      []string // metrics.roots: the lkc roots /metrics reports
	MigrateListen     string
	MigrateToken      string // migrate.token-file
}

// Default returns the configuration of a host without lkc.conf.
func Default() *Conf {
	return &Conf{
		DaemonDir:         "/run/lkcd",
		Autostart:         true,
		DaemonLog:         "/var/log/lkc/daemon.log",
		ProcDefault:       "off",
		ProcSysinfo:       true,
		OOMDefault:        "kernel",
		OOMFallback:       "kill-largest",
		OOMDeadline:       5 * time.Second,
		OOMGrowReserve:    "5%",
		OOMCheckpointTo:   "/var/lib/lkc/oom",
		GroupsDir:         "/var/lib/lkc/groups",
		GroupsParent:      "/lkc.groups",
		RulesFiles:        []string{"/etc/lkc/rules.conf", "/etc/lkc/rules.d/*.conf"},
		RulesScope:        []string{"/", "/user.slice"},
		RulesRoots:        []string{"/run/lkc"},
		RulesTemplateIdle: 10 * time.Minute,
		MetricsRoots:      []string{"/run/lkc"},
	}
}

// Path is the configuration file lkc reads: $LKC_CONFIG (tests point it
// at their own file), else DefaultPath.
func Path() string {
	if p := os.Getenv("LKC_CONFIG"); p != "" {
		return p
	}
	return DefaultPath
}

// Load reads the file at Path; a missing file means the defaults.
func Load() (*Conf, error) {
	p := Path()
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return Default(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading host configuration: %w", err)
	}
	defer f.Close()
	return Parse(f, p)
}

// Parse reads a configuration from r; name is how errors call the file.
func Parse(r io.Reader, name string) (*Conf, error) {
	c := Default()
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s line %d: %q is not `key = value`", name, n, line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if err := c.set(key, value); err != nil {
			return nil, fmt.Errorf("%s line %d: %s: %w", name, n, key, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return c, nil
}

// DaemonDirectory is where the daemon runs: $LKC_DAEMON_DIR (tests), else
// daemon.dir.
func (c *Conf) DaemonDirectory() string {
	if d := os.Getenv("LKC_DAEMON_DIR"); d != "" {
		return d
	}
	return c.DaemonDir
}

// LogPath is the daemon's log: daemon.log in $LKC_DAEMON_DIR when that is
// set (a test's daemon logs beside its run directory), else daemon.log.
func (c *Conf) LogPath() string {
	if d := os.Getenv("LKC_DAEMON_DIR"); d != "" {
		return d + "/daemon.log"
	}
	return c.DaemonLog
}
