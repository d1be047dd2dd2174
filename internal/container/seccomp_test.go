package container

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/config"
)

// The state sent with the seccomp listener is encoded by field lists; a
// listener must read what encoding/json would have written.
func TestSeccompStateEncodedAsEncodingJSON(t *testing.T) {
	created := time.Date(2026, 12, 7, 9, 45, 1, 123456789, time.UTC)
	states := []OCIState{
		{OCIVersion: "1.2.0", ID: "c1", Status: "creating", Pid: 42, Bundle: "/b", Rootfs: "/b/rootfs", Created: created, Owner: ""},
		{OCIVersion: "1.0.2-dev", ID: "a<b>&c\"\\\u2028", Status: "creating", Pid: 1, Bundle: "/x y", Rootfs: "/r\n",
			Created: created.In(time.FixedZone("x", 3600)), Owner: "root",
			Annotations: map[string]string{"org.lkc.proc": "virtual", "b": "<&>", "a": ""}},
	}
	for _, meta := range []string{"", "/var/lib/lkc <meta>"} {
		for _, st := range states {
			sc := &config.Seccomp{DefaultAction: "allow", ListenerPath: "/l", ListenerMetadata: meta,
				Syscalls: []config.SeccompRule{{Names: []string{"sysinfo"}, Action: "notify"}}}
			got := seccompListener(sc, func(pid int) OCIState { st.Pid = pid; return st })(st.Pid)
			want, err := json.Marshal(seccompProcessState{OCIVersion: st.OCIVersion, Fds: []string{"seccompFd"},
				Pid: st.Pid, Metadata: meta, State: st})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("encoded\n%s\nencoding/json\n%s", got, want)
			}
		}
	}
}
