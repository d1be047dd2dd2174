package cli

import (
	"fmt"
	"path/filepath"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/seccompagent"
	"github.com/lkc-containers/lkc/internal/steplog"
)

// execListener is container.ExecOpts.Listener for `lkc exec`: a container
// whose seccomp listener is lkc daemon's own agent (org.lkc.proc=virtual:
// sysinfo) must not lose its execs when the daemon was stopped, killed or
// is being upgraded. The daemon is started where create would start it,
// and asked to take the container back (daemonapi.OpReattach), which it
// answers once the container's /proc view is served again and its agent
// accepts; only then does the process hand the agent its listener. When
// no daemon can be had, the process runs all the same with sysinfo left
// to the kernel (the host's values), after a one-line warning. Any other
// listener is the user's: as in runc, an agent that is gone fails the exec.
// The daemon knows the container by the root lkc's listener metadata
// names (config.WithSysinfoNotify).
func execListener(g *globals) func(string, *config.Config) (*config.Seccomp, error) {
	return func(id string, cfg *config.Config) (*config.Seccomp, error) {
		sc := cfg.Seccomp
		conf, err := hostconf.Load()
		if err != nil || sc.ListenerPath != filepath.Join(conf.DaemonDirectory(), seccompagent.SocketName) {
			return sc, nil
		}
		defer steplog.Step("reattach")()
		cl, err := daemonapi.EnsureCall(conf, daemonapi.OpReattach, &daemonapi.Container{Root: sc.ListenerMetadata, ID: id}, nil)
		if cl != nil {
			cl.Close()
		}
		switch {
		case err == nil:
			return sc, nil
		case cl != nil:
			// The daemon runs and its agent answers sysinfo; only the
			// view's files may not be served.
			g.warn(fmt.Errorf("container %s: the lkc daemon did not take it back: %w", id, err))
			return sc, nil
		}
		g.warn(fmt.Errorf("container %s: %w; sysinfo(2) in this process shows the host's values", id, err))
		return config.WithoutSysinfoNotify(sc)
	}
}
