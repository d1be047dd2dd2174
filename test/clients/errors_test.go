package clients

import "strings"

// Clients turn a runtime's error into their own by its text: Podman maps
// "no such file or directory" / "executable file not found" to exit 127
// and "permission denied" to 126 (as a shell would), containerd passes the
// runtime's message up from its --log json. These cases check the runtime
// answers in the shape they parse.

func podmanErrorExitCodes(p *podman) {
	run := func(cmd ...string) result {
		args := append(append([]string{"run", "--rm"}, p.runArgs()...), p.image)
		return p.podman(append(args, cmd...)...)
	}
	check := func(what string, r result, code int, text string) {
		if r.code != code || !strings.Contains(r.stderr, text) {
			p.t.Errorf("%s: %v; want exit %d and %q in the error", what, r, code, text)
		}
	}
	check("run a missing command", run("/nonexistent"), 127, "no such file or directory")
	check("run a command not on PATH", run("nosuchcmd"), 127, "executable file not found")
	check("run a file that is not executable", run("/etc/passwd"), 126, "permission denied")
	id := p.runDetached("errs", nil, "sleep", "1000")
	defer p.rm("errs", id)
	check("exec a command not on PATH", p.podman("exec", "errs", "nosuchcmd"), 127, "executable file not found")
	check("exec a file that is not executable", p.podman("exec", "errs", "/etc/passwd"), 126, "permission denied")
	if ids := strings.Fields(p.must("ps", "-a", "-q")); len(ids) != 1 {
		p.t.Errorf("failed runs left containers: %v", ids)
	}
}

func ctrErrorMessages(r *ctrRuntime) {
	args := append(append([]string{"run", "--rm"}, r.runArgs("bad")...), r.image, "bad", "/nonexistent")
	res := r.ctr(args...)
	if res.code == 0 || !strings.Contains(res.stderr, "OCI runtime create failed") ||
		!strings.Contains(res.stderr, `"/nonexistent": stat /nonexistent: no such file or directory`) {
		r.t.Errorf("%v; want runc's shape: OCI runtime create failed ... \"/nonexistent\": stat /nonexistent: no such file or directory", res)
	}
	r.remove("bad") // ctr run --rm does not remove a container whose task failed to start
	r.runDetached("eb", "sleep", "1000")
	res = r.ctr("task", "exec", "--exec-id", "x", "eb", "/etc/passwd")
	if res.code == 0 || !strings.Contains(res.stderr, "OCI runtime exec failed") || !strings.Contains(res.stderr, "permission denied") {
		r.t.Errorf("%v; want runc's shape: OCI runtime exec failed ... permission denied", res)
	}
}
