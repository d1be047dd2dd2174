package clients

import "strings"

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
