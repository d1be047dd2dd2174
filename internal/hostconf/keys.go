package hostconf

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// set stores one key's value, checked.
func (c *Conf) set(key, value string) error {
	switch key {
	case "daemon.dir":
		return setPath(&c.DaemonDir, value, false)
	case "daemon.autostart":
		return setBool(&c.Autostart, value)
	case "daemon.log":
		return setPath(&c.DaemonLog, value, true)
	case "proc.default":
		if value != "off" && value != "virtual" {
			return fmt.Errorf("%q: use off or virtual", value)
		}
		c.ProcDefault = value
	case "proc.sysinfo":
		return setBool(&c.ProcSysinfo, value)
	case "proc.affinity":
		return setBool(&c.ProcAffinity, value)
	case "oom.default":
		return setPolicy(&c.OOMDefault, value)
	case "oom.fallback":
		return setPolicy(&c.OOMFallback, value)
	case "oom.deadline":
		d, err := time.ParseDuration(value)
		if err != nil || d <= 0 {
			return fmt.Errorf("%q: use a positive duration such as 5s", value)
		}
		c.OOMDeadline = d
	case "oom.grow-reserve":
		c.OOMGrowReserve = value
	case "oom.checkpoint-dir":
		return setPath(&c.OOMCheckpointTo, value, false)
	case "groups.dir":
		return setPath(&c.GroupsDir, value, false)
	case "groups.parent":
		return setPath(&c.GroupsParent, value, false)
	case "rules.files":
		c.RulesFiles = strings.Fields(value)
	case "rules.cgrules":
		return setPath(&c.RulesCgrules, value, true)
	case "rules.scope":
		c.RulesScope = strings.Fields(value)
	case "rules.roots":
		return setPaths(&c.RulesRoots, value)
	case "rules.template-idle":
		d, err := time.ParseDuration(value)
		if err != nil || d < 0 {
			return fmt.Errorf("%q: use a duration such as 10m, or 0 to keep the groups", value)
		}
		c.RulesTemplateIdle = d
	case "metrics.listen":
		return setListen(&c.MetricsListen, value)
	case "metrics.roots":
		return setPaths(&c.MetricsRoots, value)
	case "migrate.listen":
		c.MigrateListen = value
	case "migrate.token-file":
		return setPath(&c.MigrateToken, value, true)
	default:
		return errors.New("unknown key")
	}
	return nil
}

func setBool(p *bool, value string) error {
	switch value {
	case "true":
		*p = true
	case "false":
		*p = false
	default:
		return fmt.Errorf("%q: use true or false", value)
	}
	return nil
}

// setPath takes an absolute path, cleaned (or nothing, where empty is
// allowed).
func setPath(p *string, value string, emptyOK bool) error {
	if (value != "" || !emptyOK) && !strings.HasPrefix(value, "/") {
		return fmt.Errorf("%q: use an absolute path", value)
	}
	if value != "" {
		value = filepath.Clean(value)
	}
	*p = value
	return nil
}

// policies are the OOM policy names; those with a colon take an argument.
var policies = []string{"kernel", "kill-largest", "kill-newest", "grow:", "checkpoint", "checkpoint:", "notify:"}

// ValidPolicy checks the shape of an OOM policy (its arguments are the
// policy's own business).
func ValidPolicy(value string) error {
	for _, p := range policies {
		if value == p && !strings.HasSuffix(p, ":") {
			return nil
		}
		if strings.HasSuffix(p, ":") && strings.HasPrefix(value, p) && len(value) > len(p) {
			return nil
		}
	}
	return fmt.Errorf("%q: use kernel, kill-largest, kill-newest, grow:<ceiling>, checkpoint[:<dir>] or notify:<command>", value)
}

func setPolicy(p *string, value string) error {
	if err := ValidPolicy(value); err != nil {
		return err
	}
	*p = value
	return nil
}

// setListen takes a TCP listen address, HOST:PORT (HOST may be empty:
// every address), or nothing.
func setListen(p *string, value string) error {
	if value != "" {
		_, port, err := net.SplitHostPort(value)
		if n, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil || n == 0 {
			return fmt.Errorf("%q: use HOST:PORT such as 127.0.0.1:9323", value)
		}
	}
	*p = value
	return nil
}

// setPaths takes a space-separated list of absolute paths, cleaned: they
// are lkc roots, compared as strings with the clean ones the CLI sends.
func setPaths(p *[]string, value string) error {
	paths := strings.Fields(value)
	for i, path := range paths {
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("%q: use absolute paths", path)
		}
		paths[i] = filepath.Clean(path)
	}
	*p = paths
	return nil
}
