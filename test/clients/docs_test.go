package clients

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lkc-containers/lkc/internal/testutil/cri"
)

// docsLkcPath is the lkc path the snippets in docs/clients.md use; tests
// put the binary under test in its place.
const docsLkcPath = "/usr/local/bin/lkc"

// snippet returns the fenced block that follows "<!-- test: name -->" in
// docs/clients.md, with the binary under test in place of docsLkcPath.
func snippet(t *testing.T, name string) string {
	t.Helper()
	doc := readFile(filepath.Join(repo, "docs", "clients.md"))
	_, rest, ok := strings.Cut(doc, "<!-- test: "+name+" -->\n")
	if !ok {
		t.Fatalf("docs/clients.md has no snippet marked %q", name)
	}
	fence, rest, ok := strings.Cut(rest, "\n")
	if !ok || !strings.HasPrefix(fence, "```") {
		t.Fatalf("docs/clients.md: snippet %q does not start with a code fence", name)
	}
	body, _, ok := strings.Cut(rest, "```\n")
	if !ok {
		t.Fatalf("docs/clients.md: snippet %q has no closing fence", name)
	}
	if !strings.Contains(body, docsLkcPath) {
		t.Fatalf("docs/clients.md: snippet %q does not name %s", name, docsLkcPath)
	}
	return strings.ReplaceAll(body, docsLkcPath, lkcBinary)
}

// TestDocsPodmanContainersConf runs Podman with the documented
// containers.conf and no --runtime: lkc must be the runtime it picks.
func TestDocsPodmanContainersConf(t *testing.T) {
	requireSetup(t)
	lkc := ociRuntime{"lkc", lkcBinary}
	p := newPodman(t, lkc) // with the documented containers.conf
	for i, g := range p.globals {
		if g == "--runtime" {
			p.globals = append(p.globals[:i:i], p.globals[i+2:]...)
			break
		}
	}
	if out := strings.TrimSpace(p.must("info", "--format", "{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Path}}")); out != "lkc "+lkcBinary {
		t.Errorf("podman info: OCI runtime %q, want \"lkc %s\"", out, lkcBinary)
	}
	id := p.runDetached("conf", nil, "sleep", "1000")
	defer p.rm("conf", id)
	if rt := strings.TrimSpace(p.must("inspect", "--format", "{{.OCIRuntime}}", "conf")); rt != "lkc" {
		t.Errorf("container's runtime %q, want lkc", rt)
	}
	// With runtime_supports_json Podman reads a failing runtime's error from
	// lkc's JSON log: the message must come through.
	args := append(append([]string{"run", "--rm"}, p.runArgs()...), p.image, "/nonexistent")
	if r := p.podman(args...); r.code != 127 || !strings.Contains(r.stderr, "stat /nonexistent: no such file or directory") {
		t.Errorf("%v; want exit 127 with lkc's error", r)
	}
}

// TestDocsContainerdRuntimeHandler starts containerd 1.6 with the
// documented CRI runtime handler (config version 2) and runs a pod with it.
func TestDocsContainerdRuntimeHandler(t *testing.T) {
	requireSetup(t)
	handler := strings.Replace(snippet(t, "containerd runtime handler"), "version = 2\n", "", 1)
	docsCRIHandler(t, cri.Debian(func(dir string) string { return cri.DaemonConfig(dir, cri.SettingsV2(dir)+handler) }),
		`[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.lkc]`, 2)
}

// TestDocsContainerd2RuntimeHandler is TestDocsContainerdRuntimeHandler
// for containerd 2.x and its config version 3.
func TestDocsContainerd2RuntimeHandler(t *testing.T) {
	requireSetup(t)
	handler := strings.Replace(snippet(t, "containerd 2 runtime handler"), "version = 3\n", "", 1)
	b := criBuilds()[1]
	b.Config = func(dir string) string { return cri.BaseV3(dir) + cri.SettingsV3(dir) + handler }
	docsCRIHandler(t, b, `[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.lkc]`, 3)
}

// docsCRIHandler starts b, whose config holds a documented handler (the
// test adds only its own paths, the local pause image and the streaming
// server), and checks that the CRI plugin loads, that `containerd config
// dump` shows the handler under table with lkc as BinaryName, and that a
// pod with that handler runs under lkc: its sandbox and a container, in
// the shim's default runtime root.
func docsCRIHandler(t *testing.T, b cri.Build, table string, index int) {
	requireCRI(t, b)
	root := filepath.Join("/run/containerd/runc", cri.Namespace)
	// The default root's directories, if the shim makes them, go again
	// once empty (after containerd stopped: cleanups run last first).
	for _, dir := range []string{filepath.Dir(root), root} {
		if _, err := os.Stat(dir); err != nil {
			t.Cleanup(func() { os.Remove(dir) })
		}
	}
	d := startCRI(t, b, index)
	if out := command(t, nil, b.Ctr, "--address", d.addr, "plugins", "ls").stdout; !criLoaded(out) {
		t.Fatalf("the CRI plugin did not load with the runtime handler:\n%s", out)
	}
	dump := command(t, nil, b.Daemon, "--config", filepath.Join(d.dir, "config.toml"), "config", "dump")
	if dump.code != 0 {
		t.Fatalf("%v", dump)
	}
	conf := strings.ReplaceAll(dump.stdout, "'", `"`) // containerd 2.x quotes with '
	_, h, ok := strings.Cut(conf, table)
	if !ok || !strings.Contains(h, `runtime_type = "io.containerd.runc.v2"`) ||
		!strings.Contains(h, `BinaryName = "`+lkcBinary+`"`) {
		t.Errorf("containerd config dump has no lkc handler with BinaryName %s:\n%s", lkcBinary, dump.stdout)
	}
	r := &criRuntime{d: d, t: t, rt: ociRuntime{"lkc", lkcBinary}, root: root}
	pod := r.runPod("docs", "", map[string]int{"pid": nsContainer})
	if st := ociStatus(t, r.rt, r.root, pod.id); st != "running" {
		t.Fatalf("lkc state of the sandbox %s: %q, want running", pod.id, st)
	}
	id := pod.start(pod.container("hello", []string{"sleep", "3600"}, nil))
	if out := r.exec(id, "echo", "hello from lkc"); out != "hello from lkc\n" {
		t.Errorf("crictl exec: %q", out)
	}
}

// criLoaded reports whether `ctr plugins ls` shows the CRI plugin as ok.
func criLoaded(out string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 && f[0] == "io.containerd.grpc.v1" && f[1] == "cri" && f[len(f)-1] == "ok" {
			return true
		}
	}
	return false
}
