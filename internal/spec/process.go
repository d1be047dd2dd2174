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
	if err := checkStrings(p); err != nil {
		return nil, err
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
	if err := convertSched(p, out); err != nil {
		return nil, err
	}
	convertCaps(p.Capabilities, out)
	return out, nil
}

// CapabilityNumbers converts capability names (with or without CAP_), for
// `lkc exec --cap`, where an unknown name is a mistake on the command line.
func CapabilityNumbers(names []string) ([]int, error) {
	for _, name := range names {
		if capNumber(name) < 0 {
			return nil, invalid("--cap: unknown capability %q", name)
		}
	}
	return capNumbers(names), nil
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

// convertCaps converts the capability sets; unknown names are skipped (see
// capNumbers).
func convertCaps(caps *specs.LinuxCapabilities, p *config.Process) {
	if caps == nil {
		return
	}
	p.Capabilities = &config.Capabilities{
		Bounding:    capNumbers(caps.Bounding),
		Effective:   capNumbers(caps.Effective),
		Inheritable: capNumbers(caps.Inheritable),
		Permitted:   capNumbers(caps.Permitted),
		Ambient:     capNumbers(caps.Ambient),
	}
}

// ngroupsMax is the kernel's NGROUPS_MAX: setgroups(2) takes no more.
const ngroupsMax = 65536

// checkStrings refuses what execve and setgroups would refuse after start,
// so that create fails instead: a NUL byte inside an argument, environment
// entry or the cwd (C strings end there), an environment entry without
// "=" or with an empty name, and more supplementary groups than the kernel
// allows.
func checkStrings(p *specs.Process) error {
	for i, a := range p.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return invalid("process.args[%d] contains a NUL byte", i)
		}
	}
	for i, e := range p.Env {
		name, _, ok := strings.Cut(e, "=")
		switch {
		case strings.IndexByte(e, 0) >= 0:
			return invalid("process.env[%d] (%.40q) contains a NUL byte", i, name)
		case !ok:
			return invalid("process.env[%d] %.40q has no '='", i, e)
		case name == "":
			return invalid("process.env[%d] %.40q has an empty name", i, e)
		}
	}
	if strings.IndexByte(p.Cwd, 0) >= 0 {
		return invalid("process.cwd contains a NUL byte")
	}
	if n := len(p.User.AdditionalGids); n > ngroupsMax {
		return invalid("process.user.additionalGids has %d groups; Linux allows at most %d", n, ngroupsMax)
	}
	return nil
}
