package checkpoint

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestLaunchFile(t *testing.T) {
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "criu")
	if cmd := newCriu(wrapper).command("swrk", "3"); !reflect.DeepEqual(cmd.Args, []string{wrapper, "swrk", "3"}) {
		t.Errorf("without a launch file: %q", cmd.Args)
	}
	launch := "/p/ld.so\x00--library-path\x00/p/lib\x00/p/criu\x00"
	if err := os.WriteFile(wrapper+launchFile, []byte(launch), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := newCriu(wrapper).command("swrk", "3")
	want := []string{"/p/ld.so", "--library-path", "/p/lib", "/p/criu", "swrk", "3"}
	if cmd.Path != "/p/ld.so" || !reflect.DeepEqual(cmd.Args, want) {
		t.Errorf("with a launch file: %s %q, want %q", cmd.Path, cmd.Args, want)
	}
	if err := os.WriteFile(wrapper+launchFile, []byte("relative\x00x\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	if cmd := newCriu(wrapper).command("check"); cmd.Args[0] != wrapper {
		t.Errorf("a relative launcher was used: %q", cmd.Args)
	}
}
