package seccompagent

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/registry"
)

// TestServiceNamesAdoptedContainers: an adopted container with a virtual
// view gets the agent's socket and its root as metadata, and a listener
// sent with that metadata is named after its slot and generation; an
// unknown container's listener is refused.
func TestServiceNamesAdoptedContainers(t *testing.T) {
	dir, root := t.TempDir(), t.TempDir()
	reg, err := registry.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := reg.Adopt(root, "c1", registry.Features{Proc: true})
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{dir: dir, sysinfo: true}
	var reply daemonapi.AdoptReply
	if err := s.Adopt(e, &reply); err != nil || reply.Seccomp == nil ||
		reply.Seccomp.Path != filepath.Join(dir, SocketName) || reply.Seccomp.Metadata != root {
		t.Fatalf("adopt reply %+v (%v), want the agent's socket and the root", reply.Seccomp, err)
	}
	r := registryResolver{reg: reg}
	name, err := r.Bind(Message{Metadata: root, ID: "c1"})
	if err != nil || name != fmt.Sprintf("0.%d", e.Gen) {
		t.Fatalf("Bind: %q %v, want slot 0 of generation %d", name, err, e.Gen)
	}
	if _, err := r.Bind(Message{Metadata: root, ID: "other"}); err == nil {
		t.Fatal("Bind accepted a container the daemon does not serve")
	}
	off := &Service{dir: dir}
	reply = daemonapi.AdoptReply{}
	if off.Adopt(e, &reply); reply.Seccomp != nil {
		t.Fatal("proc.sysinfo = false still named the agent")
	}
}
