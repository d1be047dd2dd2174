package spec

import (
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

var rlimitTypes = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE,
	"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

func convertProcess(s *specs.Spec, c *config.Config) error {
	p := s.Process
	if p == nil {
		return invalid("process is missing")
	}
	if len(p.Args) == 0 {
		return invalid("process.args is empty")
	}
	if !filepath.IsAbs(p.Cwd) {
		return invalid("process.cwd %q is not an absolute path", p.Cwd)
	}
	c.Process = config.Process{
		Terminal:        p.Terminal,
		Args:            p.Args,
		Env:             p.Env,
		Cwd:             p.Cwd,
		UID:             p.User.UID,
		GID:             p.User.GID,
		AdditionalGids:  p.User.AdditionalGids,
		Umask:           p.User.Umask,
		NoNewPrivileges: p.NoNewPrivileges,
		OOMScoreAdj:     p.OOMScoreAdj,
	}
	if p.ConsoleSize != nil {
		c.Process.ConsoleHeight = uint16(p.ConsoleSize.Height)
		c.Process.ConsoleWidth = uint16(p.ConsoleSize.Width)
	}
	if p.User.Username != "" {
		return invalid("process.user.username is for Windows; give uid and gid")
	}
	if err := convertRlimits(p.Rlimits, &c.Process); err != nil {
		return err
	}
	return convertCaps(p.Capabilities, &c.Process)
}

func convertRlimits(rl []specs.POSIXRlimit, p *config.Process) error {
	seen := map[string]bool{}
	for _, r := range rl {
		t, ok := rlimitTypes[strings.ToUpper(r.Type)]
		if !ok {
			return invalid("process.rlimits: unknown rlimit type %q", r.Type)
		}
		if seen[r.Type] {
			return invalid("process.rlimits: %s given twice", r.Type)
		}
		seen[r.Type] = true
		if r.Soft > r.Hard {
			return invalid("process.rlimits: %s soft limit %d exceeds hard limit %d", r.Type, r.Soft, r.Hard)
		}
		p.Rlimits = append(p.Rlimits, config.Rlimit{Name: r.Type, Type: t, Soft: r.Soft, Hard: r.Hard})
	}
	return nil
}

func convertCaps(caps *specs.LinuxCapabilities, p *config.Process) error {
	if caps == nil {
		return nil
	}
	var out config.Capabilities
	sets := []struct {
		name string
		in   []string
		out  *[]int
	}{
		{"bounding", caps.Bounding, &out.Bounding},
		{"effective", caps.Effective, &out.Effective},
		{"inheritable", caps.Inheritable, &out.Inheritable},
		{"permitted", caps.Permitted, &out.Permitted},
		{"ambient", caps.Ambient, &out.Ambient},
	}
	for _, set := range sets {
		nums, err := capNumbers(set.name, set.in)
		if err != nil {
			return invalid("%v", err)
		}
		*set.out = nums
	}
	p.Capabilities = &out
	return nil
}
