package initproc

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/hooks"
)

// createHooks runs at the point between the container's mounts and
// pivot_root: first the parent's prestart and createRuntime hooks, which
// init waits for, then the createContainer hooks here, in the container's
// namespaces.
func createHooks(sync int, msg *Message) error {
	h := &msg.Config.Hooks
	if len(h.Prestart)+len(h.CreateRuntime) > 0 {
		if err := unix.Sendmsg(sync, []byte(HooksPoint), nil, nil, 0); err != nil {
			return fmt.Errorf("asking the parent to run the runtime hooks: %w", err)
		}
		reply, err := Recv(sync)
		if err != nil {
			return fmt.Errorf("waiting for the runtime hooks: %w", err)
		}
		if string(reply) != HooksDone {
			return fmt.Errorf("waiting for the runtime hooks: unexpected message %q", reply)
		}
	}
	return hooks.Run(hooks.CreateContainer, h.CreateContainer, msg.CreateState)
}

// startHooks runs the startContainer hooks once start has released init.
func (p *prepared) startHooks() error {
	return hooks.Run(hooks.StartContainer, p.c.Hooks.StartContainer, p.startState)
}
