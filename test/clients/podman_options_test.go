package clients

import (
	"strings"
	"time"
)

// podmanReadOnlyTmpfs runs --read-only with --tmpfs: Podman mounts tmpfs
// on /run, /tmp, /var/tmp and the --tmpfs path with runc's "tmpcopyup"
// option, so each starts with what the image had there.
func podmanReadOnlyTmpfs(p *podman) {
	args := append(append([]string{"run", "--rm", "--read-only", "--tmpfs", "/etc:mode=755"}, p.runArgs()...), p.image,
		"sh", "-c", "touch /ro 2>/dev/null || echo read-only; grep -c '^root:' /etc/passwd; touch /etc/x /tmp/x && echo writable; grep -c ' /etc tmpfs' /proc/mounts")
	r := p.podman(args...)
	if r.code != 0 || r.stdout != "read-only\n1\nwritable\n1\n" {
		p.t.Errorf("%v; want a read-only root and a writable /etc tmpfs with the image's files", r)
	}
}

// podmanNetworkNone runs --network none: the runtime creates the network
// namespace and brings lo up, as runc does.
func podmanNetworkNone(p *podman) {
	args := append(append([]string{"run", "--rm", "--network", "none"}, p.runArgs()...), p.image,
		"sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/flags")
	r := p.podman(args...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "lo\n") || !strings.HasSuffix(r.stdout, "0x9\n") {
		p.t.Errorf("%v; want only lo, up (flags 0x9)", r)
	}
}

// podmanCgroupParentLimit sets a memory limit on a --cgroup-parent made
// beforehand, as a pod's cgroup is: the runtime puts the container
// beneath it, so 100 MiB do not fit under the parent's 32 MiB.
func podmanCgroupParentLimit(p *podman) {
	parent := limitedCgroupParent(p.t, "podman-limit-"+p.rt.name)
	args := append([]string{"run", "--rm"}, p.runArgs()...)
	args[len(args)-1] = parent // runArgs ends with the --cgroup-parent
	r := p.podman(append(args, p.image, "dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1")...)
	if r.code != 137 {
		p.t.Errorf("%v; want an OOM kill (exit 137) under the parent's 32 MiB limit", r)
	}
	// conmon, in <parent>/conmon, runs `podman container cleanup` (and
	// the runtime's delete) after run --rm returned.
	gone := func() bool { return strings.TrimSpace(p.podman("ps", "-a", "-q").stdout) == "" && cgroupsEmpty(parent) }
	if !waitFor(10*time.Second, gone) {
		p.t.Errorf("the container or conmon still in %s 10 s after podman run --rm", parent)
	}
}
