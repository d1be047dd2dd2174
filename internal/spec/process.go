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
	p, err := ConvertProcess(s.Process)
	if err != nil {
		return err
	}
	c.Process = *p
	return nil
}

// ConvertProcess validates a runtime-spec process (config.json's, or one
// given to `lkc exec --process`) and converts it.
func ConvertProcess(p *specs.Process) (*config.Process, error) {
	if p == nil {
		return nil, invalid("process is missing")
	}
	if len(p.Args) == 0 {
		return nil, invalid("process.args is empty")
	}
	if !filepath.IsAbs(p.Cwd) {
		return nil, invalid("process.cwd %q is not an absolute path", p.Cwd)
	}
	out := &config.Process{
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
		ApparmorProfile: p.ApparmorProfile,
		SelinuxLabel:    p.SelinuxLabel,
	}
	if p.ConsoleSize != nil {
		out.ConsoleHeight = uint16(p.ConsoleSize.Height)
		out.ConsoleWidth = uint16(p.ConsoleSize.Width)
	}
	if p.User.Username != "" {
		return nil, invalid("process.user.username is for Windows; give uid and gid")
	}
	if err := convertRlimits(p.Rlimits, out); err != nil {
		return nil, err
	}
	if err := convertCaps(p.Capabilities, out); err != nil {
		return nil, err
	}
	return out, nil
}

// CapabilityNumbers converts capability names (with or without CAP_), for
// `lkc exec --cap`.
func CapabilityNumbers(names []string) ([]int, error) {
	nums, err := capNumbers("cap", names)
	if err != nil {
		return nil, invalid("%v", err)
	}
	return nums, nil
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
