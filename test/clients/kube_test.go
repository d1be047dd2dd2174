package clients

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/testutil/cri"
)

// kubeBin is where scripts/install-kube.sh puts kube-apiserver, kubelet,
// kubectl and etcd.
const kubeBin = "/opt/lkc/kube-v1.37.2/bin"

// kubeletSysctls are the kernel settings the kubelet sets at its start
// (its setupKernelTunables); the test puts back what the host had.
var kubeletSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// kubeCluster is a single-node Kubernetes of the test's own: etcd,
// kube-apiserver and a kubelet whose runtime is a criDaemon.
type kubeCluster struct {
	t           *testing.T
	d           *criDaemon
	dir         string
	kubeconfig  string
	node        string
	kubeletPort int
}

// TestKubernetes runs a Pod on lkc in a real single-node Kubernetes
// (issue 15's stretch), with runc as the reference: containerd 2.x with
// RuntimeClass handlers lkc and runc, a kubelet as a cluster runs it
// (cgroupfs driver, its cgroup root beneath the test's own cgroup), and
// kube-apiserver on etcd. For each handler a Pod with that
// runtimeClassName becomes Running under that runtime; `kubectl exec`
// (with stdin too), `kubectl logs` and `logs --follow` work; the kubelet's
// checkpoint endpoint (KEP-2008) checkpoints the running container into
// an archive and the container goes on counting; deleting the Pod leaves
// no container in the runtime's root.
func TestKubernetes(t *testing.T) {
	requireSetup(t)
	for _, b := range []string{"kube-apiserver", "kubelet", "kubectl", "etcd"} {
		if _, err := os.Stat(filepath.Join(kubeBin, b)); err != nil {
			t.Skipf("%s is not installed (scripts/install-kube.sh builds it): %v", b, err)
		}
	}
	b := criBuilds()[1]
	requireCRI(t, b)
	c := startKube(t, startCRI(t, b, 5))
	for _, rt := range runtimes() {
		t.Run(rt.name, func(t *testing.T) { kubePod(c, t, rt) })
	}
}

// startKube starts etcd, kube-apiserver and a kubelet on d, waits for the
// node to be Ready and makes the RuntimeClasses lkc and runc. Cleanups
// delete the Pods, stop each daemon and remove what they left: the
// kubelet's mount of its root directory, /var/lib/kubelet (its device
// plugin socket and serving certificate go there whatever its root), the
// cgroups beneath its cgroup root, and the kernel settings it changed.
func startKube(t *testing.T, d *criDaemon) *kubeCluster {
	t.Helper()
	c := &kubeCluster{t: t, d: d, dir: t.TempDir(), node: fmt.Sprintf("lkc-kube-%d", os.Getpid())}
	c.kubeconfig = filepath.Join(c.dir, "kubeconfig")
	etcdPort, etcdPeer, apiPort := localPort(t), localPort(t), localPort(t)
	c.kubeletPort = localPort(t)

	c.daemon("etcd", "--data-dir", filepath.Join(c.dir, "etcd"), "--log-level", "warn",
		"--listen-client-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPort),
		"--advertise-client-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPort),
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPeer),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPeer),
		"--initial-cluster", fmt.Sprintf("default=http://127.0.0.1:%d", etcdPeer))
	pki := filepath.Join(c.dir, "pki")
	writeServiceAccountKey(t, pki)
	token := fmt.Sprintf("lkc-test-%d", os.Getpid())
	writeFile(t, filepath.Join(pki, "tokens.csv"), token+",admin,admin,system:masters\n")
	c.daemon("kube-apiserver", "--etcd-servers", fmt.Sprintf("http://127.0.0.1:%d", etcdPort),
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(apiPort), "--cert-dir", pki,
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(pki, "sa.key"),
		"--service-cluster-ip-range", "10.97.0.0/16", "--authorization-mode", "AlwaysAllow",
		"--token-auth-file", filepath.Join(pki, "tokens.csv"), "--kubelet-preferred-address-types", "InternalIP")
	writeFile(t, c.kubeconfig, fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "https://127.0.0.1:%d", insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: %s}}]
contexts: [{name: test, context: {cluster: test, user: admin}}]
current-context: test
`, apiPort, token))
	if !waitFor(60*time.Second, func() bool { return c.tryKubectl("get", "--raw", "/readyz").code == 0 }) {
		t.Fatalf("kube-apiserver is not ready after 60 s:\n%s", c.logTail("kube-apiserver"))
	}

	c.keepSysctls()
	if _, err := os.Stat("/var/lib/kubelet"); os.IsNotExist(err) {
		t.Cleanup(func() { os.RemoveAll("/var/lib/kubelet") })
	}
	root := cgroupParent(t, "kube")
	for ctrl := range ownCgroups(t) {
		if err := os.MkdirAll(filepath.Join("/sys/fs/cgroup", ctrl, root), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	kubeletDir := filepath.Join(c.dir, "kubelet")
	t.Cleanup(func() { unix.Unmount(kubeletDir, unix.MNT_DETACH) })
	conf := filepath.Join(c.dir, "kubelet.yaml")
	writeFile(t, conf, fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: %s
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://%s
podLogsDir: %s
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
port: %d
readOnlyPort: 0
healthzPort: 0
enforceNodeAllocatable: []
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", imagefs.available: "1%%"}
imageGCHighThresholdPercent: 100
`, root, d.addr, filepath.Join(c.dir, "pods"), c.kubeletPort))
	c.daemon("kubelet", "--config", conf, "--kubeconfig", c.kubeconfig, "--root-dir", kubeletDir,
		"--cert-dir", filepath.Join(c.dir, "kubelet-pki"), "--hostname-override", c.node)
	ready := func() bool {
		res := c.tryKubectl("get", "node", c.node, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		return res.stdout == "True"
	}
	if !waitFor(90*time.Second, ready) {
		t.Fatalf("node %s is not Ready after 90 s:\n%s", c.node, c.logTail("kubelet"))
	}
	var classes strings.Builder
	for _, rt := range runtimes() {
		fmt.Fprintf(&classes, "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: %s}\nhandler: %s\n---\n", rt.name, rt.name)
	}
	classes.WriteString("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: default}\n")
	c.apply(classes.String())
	return c
}

// kubePod runs a counting Pod with runtimeClassName rt and drives it as
// a cluster's user does.
func kubePod(cluster *kubeCluster, t *testing.T, rt ociRuntime) {
	c := *cluster
	c.t = t
	name := "counter-" + rt.name
	c.apply(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: default}
spec:
  nodeName: %s
  runtimeClassName: %s
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: count
    image: %s
    imagePullPolicy: Never
    command: ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i; echo $i > /tmp/n; sleep 0.2; done"]
`, name, c.node, rt.name, cri.BusyboxImage))
	t.Cleanup(func() { c.tryKubectl("delete", "pod", name, "--grace-period=1", "--wait=true", "--timeout=60s") })
	if res := c.tryKubectl("wait", "--for=condition=Ready", "pod/"+name, "--timeout=90s"); res.code != 0 {
		t.Fatalf("%v\n%s\nkubelet:\n%s", res, c.tryKubectl("describe", "pod", name).stdout, c.logTail("kubelet"))
	}
	id := strings.TrimPrefix(c.kubectl("get", "pod", name, "-o", "jsonpath={.status.containerStatuses[0].containerID}"), "containerd://")
	root := filepath.Join(cri.RuntimeRoot(c.d.dir, rt.name), cri.Namespace)
	if st := ociStatus(t, rt, root, id); st != "running" {
		t.Fatalf("%s state of the Pod's container %s: %q, want running", rt.name, id, st)
	}

	if got := c.kubectl("exec", name, "--", "hostname"); got != name+"\n" {
		t.Errorf("kubectl exec hostname: %q, want %q", got, name)
	}
	res, err := runWithInput(t, nil, strings.NewReader("through stdin\n"), filepath.Join(kubeBin, "kubectl"),
		"--kubeconfig", c.kubeconfig, "exec", "-i", name, "--", "cat")
	if err != nil || res.code != 0 || res.stdout != "through stdin\n" {
		t.Errorf("kubectl exec -i cat: %v %v", res, err)
	}
	count := func() int {
		n, _ := strconv.Atoi(strings.TrimSpace(c.tryKubectl("exec", name, "--", "cat", "/tmp/n").stdout))
		return n
	}
	waitFor(10*time.Second, func() bool { return count() >= 5 })
	if logs := strings.Fields(c.kubectl("logs", name, "--tail", "3")); len(logs) != 3 {
		t.Errorf("kubectl logs --tail 3: %q", logs)
	}
	c.checkFollow(name)

	archive := c.checkpoint(name, "count")
	before := count()
	list := command(t, nil, "tar", "-tf", archive)
	for _, want := range []string{"checkpoint/inventory.img", "checkpoint/pstree.img", "config.dump", "spec.dump"} {
		if !strings.Contains("\n"+list.stdout, "\n"+want+"\n") {
			t.Errorf("the kubelet's checkpoint archive has no %s: %v", want, list)
		}
	}
	if !waitFor(10*time.Second, func() bool { return count() > before }) {
		t.Errorf("the container stopped counting at %d after the kubelet's checkpoint", before)
	}
	if st := ociStatus(t, rt, root, id); st != "running" {
		t.Errorf("%s state of %s after the checkpoint: %q, want running", rt.name, id, st)
	}

	c.kubectl("delete", "pod", name, "--grace-period=1", "--wait=true", "--timeout=60s")
	if !waitFor(30*time.Second, func() bool { return ociStatus(t, rt, root, id) == "" }) {
		t.Errorf("%s still knows container %s after its Pod was deleted", rt.name, id)
	}
}

// checkFollow reads `kubectl logs --follow` until two lines newer than
// its first have come.
func (c *kubeCluster) checkFollow(pod string) {
	t := c.t
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(kubeBin, "kubectl"), "--kubeconfig", c.kubeconfig, "logs", "--follow", "--tail", "1", pod)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	var seen []int
	buf := make([]byte, 4096)
	var text string
	for len(seen) < 3 {
		n, err := out.Read(buf)
		text += string(buf[:n])
		seen = seen[:0]
		for _, f := range strings.Fields(text) {
			if v, err := strconv.Atoi(f); err == nil {
				seen = append(seen, v)
			}
		}
		if err != nil {
			t.Errorf("kubectl logs --follow ended after %q: %v", text, err)
			return
		}
	}
	if seen[2] <= seen[0] {
		t.Errorf("kubectl logs --follow: %q, want a growing count", text)
	}
}

// checkpoint asks the kubelet's checkpoint endpoint to checkpoint a Pod's
// container and returns the archive it wrote.
func (c *kubeCluster) checkpoint(pod, container string) string {
	t := c.t
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	url := fmt.Sprintf("https://127.0.0.1:%d/checkpoint/default/%s/%s", c.kubeletPort, pod, container)
	resp, err := client.Post(url, "", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var reply struct{ Items []string }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &reply) != nil || len(reply.Items) != 1 {
		t.Fatalf("POST %s: %s %s", url, resp.Status, body)
	}
	return reply.Items[0]
}

// daemon starts one of the cluster's programs with its output in
// dir/NAME.log; at the end it is stopped (SIGTERM, SIGKILL after 10 s).
func (c *kubeCluster) daemon(name string, args ...string) {
	t := c.t
	log, err := os.Create(filepath.Join(c.dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(filepath.Join(kubeBin, name), args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		if name == "kubelet" {
			c.removePods()
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
}

// removePods deletes the Pods a failed case left while the kubelet still
// runs, then the sandboxes it stopped and would have collected later;
// each runtime's root must be empty then.
func (c *kubeCluster) removePods() {
	c.tryKubectl("delete", "pods", "--all", "--grace-period=1", "--wait=true", "--timeout=60s")
	for _, p := range strings.Fields(c.d.tryCrictl(c.t, "pods", "-q", "--state", "notready").stdout) {
		c.d.tryCrictl(c.t, "rmp", p)
	}
	for _, rt := range runtimes() {
		checkNoState(c.t, filepath.Join(cri.RuntimeRoot(c.d.dir, rt.name), cri.Namespace))
	}
}

// keepSysctls puts back at the end the kernel settings the kubelet sets.
func (c *kubeCluster) keepSysctls() {
	t := c.t
	saved := map[string]string{}
	for _, k := range kubeletSysctls {
		v, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if err != nil {
			t.Fatal(err)
		}
		saved[k] = string(v)
	}
	t.Cleanup(func() {
		for k, v := range saved {
			if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0); err != nil {
				t.Errorf("putting back %s: %v", k, err)
			}
		}
	})
}

func (c *kubeCluster) apply(manifest string) {
	c.t.Helper()
	f := filepath.Join(c.t.TempDir(), "manifest.yaml")
	writeFile(c.t, f, manifest)
	c.kubectl("apply", "-f", f)
}

func (c *kubeCluster) kubectl(args ...string) string {
	c.t.Helper()
	res := command(c.t, nil, filepath.Join(kubeBin, "kubectl"), append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	if res.code != 0 {
		c.t.Fatalf("%v", res)
	}
	return res.stdout
}

func (c *kubeCluster) tryKubectl(args ...string) result {
	c.t.Helper()
	return tryCommand(c.t, nil, filepath.Join(kubeBin, "kubectl"), append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
}

// logTail is the end of one of the cluster's logs, for a failure.
func (c *kubeCluster) logTail(name string) string {
	return lastLines(readFile(filepath.Join(c.dir, name+".log")), 30)
}

// writeServiceAccountKey writes the key pair kube-apiserver signs and
// checks service account tokens with: dir/sa.key and dir/sa.pub.
func writeServiceAccountKey(t *testing.T, dir string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sa.key"), string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})))
	writeFile(t, filepath.Join(dir, "sa.pub"), string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
