package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRunSocketActivation: as runc does, `lkc run` started with systemd's
// socket activation (LISTEN_FDS for its own pid; Podman passes it on)
// hands those fds to the container's process from fd 3, before the
// --preserve-fds ones, and tells it LISTEN_FDS and LISTEN_PID=1.
func TestRunSocketActivation(t *testing.T) {
	e := newEnv(t)
	listen, preserved := e.tempFile(), e.tempFile()
	for f, s := range map[*os.File]string{listen: "listen", preserved: "preserved"} {
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Seek(0, 0); err != nil {
			t.Fatal(err)
		}
	}
	b := e.bundle([]string{"sh", "-c", `echo "$LISTEN_FDS $LISTEN_PID $(cat <&3) $(cat <&4)"`}, nil)
	cmd := exec.Command("sh", "-c", `LISTEN_FDS=1 LISTEN_PID=$$ exec "$0" "$@"`,
		e.bin, "--root", e.root, "run", "--preserve-fds", "1", "--bundle", b, e.id())
	cmd.ExtraFiles = []*os.File{listen, preserved}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("lkc run with LISTEN_FDS=1: %v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "1 1 listen preserved" {
		t.Errorf("LISTEN_FDS LISTEN_PID fd3 fd4: got %q, want %q", got, "1 1 listen preserved")
	}
}
