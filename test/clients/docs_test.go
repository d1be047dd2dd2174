package clients

import (
	"path/filepath"
	"strings"
	"testing"
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

// TestDocsContainerdRuntimeHandler starts containerd with the documented
// CRI runtime handler. Debian has no crictl and no registry is reachable
// for a pause image, so the handler is checked as far as containerd goes
// without a pod: the CRI plugin loads with it, the dumped config carries
// lkc as BinaryName, and a container runs through the same shim and
// option set the way ctr sets them (--runtime io.containerd.runc.v2
// --runc-binary).
func TestDocsContainerdRuntimeHandler(t *testing.T) {
	requireSetup(t)
	handler := snippet(t, "containerd runtime handler")
	handler = strings.Replace(handler, "version = 2\n", "", 1) // containerdConfig has it
	cni := t.TempDir()
	extra := handler + `
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "` + cni + `"
`
	c := startContainerd(t, extra)
	if out := command(t, nil, "ctr", "--address", c.addr, "plugins", "ls").stdout; !criLoaded(out) {
		t.Fatalf("the CRI plugin did not load with the runtime handler:\n%s", out)
	}
	dump := command(t, nil, "containerd", "--config", filepath.Join(c.dir, "config.toml"), "config", "dump")
	if dump.code != 0 {
		t.Fatalf("%v", dump)
	}
	_, h, ok := strings.Cut(dump.stdout, `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.lkc]`)
	if !ok || !strings.Contains(h, `runtime_type = "io.containerd.runc.v2"`) ||
		!strings.Contains(h, `BinaryName = "`+lkcBinary+`"`) {
		t.Errorf("containerd config dump has no lkc handler with BinaryName %s:\n%s", lkcBinary, dump.stdout)
	}
	r := newCtrRuntime(t, c, ociRuntime{"lkc", lkcBinary})
	r.importImage()
	args := append(append([]string{"run", "--rm", "--runtime", "io.containerd.runc.v2"}, r.runArgs("h")...), r.image, "h", "echo", "hi")
	if res := r.ctr(args...); res.code != 0 || res.stdout != "hi\n" {
		t.Errorf("%v; want hi", res)
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
