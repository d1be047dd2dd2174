package hostconf

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseDefaultsAndValues(t *testing.T) {
	in := `# a comment
daemon.dir = /tmp/lkcd   # trailing comment
daemon.autostart = false
proc.default = virtual

oom.deadline = 250ms
oom.default = grow:1G
rules.scope = /a /b
rules.roots = /run/lkc /srv/lkc
rules.template-idle = 0
rules.cgrules =
metrics.listen = 127.0.0.1:9323
metrics.roots = /run/lkc /run/containerd/runc/k8s.io
`
	c, err := Parse(strings.NewReader(in), "lkc.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.DaemonDir = "/tmp/lkcd"
	want.Autostart = false
	want.ProcDefault = "virtual"
	want.OOMDeadline = 250 * time.Millisecond
	want.OOMDefault = "grow:1G"
	want.RulesScope = []string{"/a", "/b"}
	want.RulesRoots = []string{"/run/lkc", "/srv/lkc"}
	want.RulesTemplateIdle = 0
	want.MetricsListen = "127.0.0.1:9323"
	want.MetricsRoots = []string{"/run/lkc", "/run/containerd/runc/k8s.io"}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"daemon.dir = /x\nproc.defualt = virtual\n", "lkc.conf line 2: proc.defualt: unknown key"},
		{"\n\nnonsense\n", `lkc.conf line 3: "nonsense" is not`},
		{"daemon.autostart = yes", `line 1: daemon.autostart: "yes": use true or false`},
		{"proc.default = on", `line 1: proc.default: "on": use off or virtual`},
		{"oom.deadline = -1s", "line 1: oom.deadline:"},
		{"rules.template-idle = soon", `line 1: rules.template-idle: "soon": use a duration such as 10m, or 0 to keep the groups`},
		{"rules.template-idle = -1m", `line 1: rules.template-idle: "-1m": use a duration`},
		{"oom.default = grow:", "line 1: oom.default:"},
		{"daemon.dir = run/lkcd", "line 1: daemon.dir: \"run/lkcd\": use an absolute path"},
		{"metrics.listen = 9323", `line 1: metrics.listen: "9323": use HOST:PORT`},
		{"metrics.listen = localhost:http", `line 1: metrics.listen: "localhost:http": use HOST:PORT`},
		{"metrics.listen = :70000", `line 1: metrics.listen: ":70000": use HOST:PORT`},
		{"metrics.roots = run/lkc", `line 1: metrics.roots: "run/lkc": use absolute paths`},
	} {
		_, err := Parse(strings.NewReader(tc.in), "lkc.conf")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.in, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error is not one line: %q", tc.in, err)
		}
	}
}

func TestLoadFollowsLKCConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lkc.conf")
	t.Setenv("LKC_CONFIG", p)
	c, err := Load()
	if err != nil || !reflect.DeepEqual(c, Default()) {
		t.Fatalf("missing file: %+v, %v; want the defaults", c, err)
	}
	if err := os.WriteFile(p, []byte("daemon.dir = /x/y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = Load()
	if err != nil || c.DaemonDir != "/x/y" {
		t.Fatalf("got %+v, %v", c, err)
	}
	t.Setenv("LKC_DAEMON_DIR", "/z")
	if d := c.DaemonDirectory(); d != "/z" {
		t.Errorf("DaemonDirectory = %q with LKC_DAEMON_DIR=/z", d)
	}
}

func TestFeatures(t *testing.T) {
	c := Default()
	for _, tc := range []struct {
		ann  map[string]string
		want Features
		err  string
	}{
		{nil, Features{}, ""},
		{map[string]string{AnnotationProc: "virtual"}, Features{Proc: true}, ""},
		{map[string]string{AnnotationOOMPolicy: "kill-largest"}, Features{OOMPolicy: "kill-largest"}, ""},
		{map[string]string{AnnotationOOMPolicy: "kernel"}, Features{}, ""},
		{map[string]string{AnnotationProc: "yes"}, Features{}, `annotation org.lkc.proc="yes"`},
		{map[string]string{AnnotationOOMPolicy: "explode"}, Features{}, `annotation org.lkc.oom-policy="explode"`},
	} {
		got, err := c.Features(tc.ann)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: got %v, want %q", tc.ann, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v: got %+v, %v; want %+v", tc.ann, got, err, tc.want)
		}
	}
	c.ProcDefault = "virtual"
	if f, _ := c.Features(nil); !f.Proc {
		t.Error("proc.default = virtual: a container without the annotation is not served")
	}
	if f, _ := c.Features(map[string]string{AnnotationProc: "off"}); f.Proc {
		t.Error("the annotation off does not win over proc.default = virtual")
	}
	if m := (Features{Proc: true}).Missing(Features{}); m != "org.lkc.proc=virtual" {
		t.Errorf("Missing = %q", m)
	}
}

// TestPathListsAreCleaned: roots are compared with the clean absolute
// roots the CLI sends (--root through filepath.Abs), so /run/lkc/ in
// metrics.roots must not report every container a second time.
func TestPathListsAreCleaned(t *testing.T) {
	c, err := Parse(strings.NewReader("metrics.roots = /run/lkc/ /srv//lkc/./x\nrules.roots = /a/../b/\n"), "lkc.conf")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/run/lkc", "/srv/lkc/x"}; !reflect.DeepEqual(c.MetricsRoots, want) {
		t.Errorf("metrics.roots %q, want %q", c.MetricsRoots, want)
	}
	if want := []string{"/b"}; !reflect.DeepEqual(c.RulesRoots, want) {
		t.Errorf("rules.roots %q, want %q", c.RulesRoots, want)
	}
	// daemon.dir too: the worker watches its parent for its name (a
	// trailing slash made it watch the directory itself), and only the
	// default directory is started through systemd.
	c, err = Parse(strings.NewReader("daemon.dir = /run/lkcd/\ngroups.dir = /var//lib/lkc/groups/\n"), "lkc.conf")
	if err != nil {
		t.Fatal(err)
	}
	if c.DaemonDir != "/run/lkcd" || c.GroupsDir != "/var/lib/lkc/groups" {
		t.Errorf("daemon.dir %q, groups.dir %q: want them clean", c.DaemonDir, c.GroupsDir)
	}
}
