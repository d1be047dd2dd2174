package lsm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lkc-containers/lkc/internal/config"
)

func fakeHost(t *testing.T, files map[string]string) Host {
	t.Helper()
	root := t.TempDir()
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Host{Sys: root + "/sys"}
}

// dirProc stands in for a procfs root: the attr files of a temporary
// directory.
type dirProc string

func (d dirProc) OpenFile(sub string, flags int) (*os.File, error) {
	return os.OpenFile(filepath.Join(string(d), sub), flags, 0)
}

// fakeProc makes a dirProc holding files.
func fakeProc(t *testing.T, files ...string) dirProc {
	t.Helper()
	root := t.TempDir()
	for _, name := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dirProc(root)
}

func TestAppArmorDetection(t *testing.T) {
	cases := []struct {
		files map[string]string
		want  bool
	}{
		{nil, false},
		{map[string]string{"sys/module/apparmor/parameters/enabled": "N\n"}, false},
		{map[string]string{"sys/module/apparmor/parameters/enabled": "Y\n"}, true},
		{map[string]string{"sys/kernel/security/apparmor/profiles": ""}, true},
	}
	for _, c := range cases {
		if got := fakeHost(t, c.files).AppArmor(); got != c.want {
			t.Errorf("files %v: AppArmor() = %v, want %v", c.files, got, c.want)
		}
	}
}

func TestCheckRefusesWhatTheHostLacks(t *testing.T) {
	none := fakeHost(t, nil)
	withAA := fakeHost(t, map[string]string{"sys/module/apparmor/parameters/enabled": "Y"})
	cases := []struct {
		h     Host
		p     config.Process
		label string
		want  string // "" for no error
	}{
		{none, config.Process{}, "", ""},
		{none, config.Process{ApparmorProfile: "p"}, "", `process.apparmorProfile "p": AppArmor is not enabled`},
		{withAA, config.Process{ApparmorProfile: "p"}, "", ""},
		{withAA, config.Process{SelinuxLabel: "l"}, "", `process.selinuxLabel "l": SELinux is not enabled`},
		{none, config.Process{}, "m", `linux.mountLabel "m": SELinux is not enabled`},
	}
	for _, c := range cases {
		err := c.h.Check(&c.p, c.label)
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("Check(%+v, %q) = %v, want %q", c.p, c.label, err, c.want)
		}
	}
}

func TestOnExecWritesTheAttrFiles(t *testing.T) {
	stacked := fakeProc(t, "thread-self/attr/apparmor/exec", "thread-self/attr/exec")
	if err := OnExec(&config.Process{ApparmorProfile: "prof"}, stacked); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(string(stacked) + "/thread-self/attr/apparmor/exec"); string(b) != "exec prof" {
		t.Errorf("attr/apparmor/exec = %q, want \"exec prof\"", b)
	}
	old := fakeProc(t, "thread-self/attr/exec")
	if err := OnExec(&config.Process{ApparmorProfile: "prof"}, old); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(string(old) + "/thread-self/attr/exec"); string(b) != "exec prof" {
		t.Errorf("attr/exec without apparmor's directory = %q, want \"exec prof\"", b)
	}
	se := fakeProc(t, "thread-self/attr/exec")
	if err := OnExec(&config.Process{SelinuxLabel: "u:r:t:s0"}, se); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(string(se) + "/thread-self/attr/exec"); string(b) != "u:r:t:s0" {
		t.Errorf("attr/exec for an SELinux label = %q", b)
	}
	if err := OnExec(&config.Process{SelinuxLabel: "x"}, fakeProc(t)); err == nil {
		t.Error("OnExec without attr files: want an error")
	}
}
