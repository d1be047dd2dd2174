// Package clients drives lkc through real clients, unchanged: Podman (with
// --runtime), containerd's runc shim (ctr --runc-binary) and the client
// configurations docs/clients.md gives. Every case runs with lkc and with
// runc, the reference, each client kept apart from the machine's own state:
// its own storage, run directories, runtime root, cgroup parent and, for
// containerd, its own daemon.
package clients

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lkc-containers/lkc/internal/testutil"
	"github.com/lkc-containers/lkc/internal/testutil/cri"
)

var (
	repo       string // the checkout
	lkcBinary  string // the binary under test
	imageTar   string // a busybox rootfs as a tarball, for `podman import`
	ociArchive string // the same as an image in an OCI archive, for `ctr images import`
	// The CRI tests' pause and busybox images, as OCI archives.
	pauseArchive, busyboxArchive string
	setupErr                     error // why the suite cannot run, reported by every test
)

// runtimes are the OCI runtimes every case runs with: lkc, and runc as the
// reference that tells a client's or host's failure from lkc's.
func runtimes() []ociRuntime {
	return []ociRuntime{{"lkc", lkcBinary}, {"runc", "/usr/sbin/runc"}}
}

type ociRuntime struct{ name, path string }

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		return m.Run() // every test skips through requireSetup
	}
	tmp, err := os.MkdirTemp("", "lkc-clients-")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer os.RemoveAll(tmp)
	_, here, _, _ := runtime.Caller(0)
	repo = filepath.Join(filepath.Dir(here), "..", "..")
	setupErr = setup(tmp)
	roots := testutil.CgroupRoots()
	made := missingAncestors()
	code := m.Run()
	removeEmpty(made)
	// The clients' defaults (containerd's /<namespace>/<id>, Podman's
	// /libpod_parent, Docker's /docker) are absolute: a case that forgot
	// its cgroup parent shows here.
	if leaked := testutil.NewAtCgroupRoots(roots, "lkc-clients-", "libpod", "docker", "default", ctrNamespace); len(leaked) > 0 {
		fmt.Printf("leak: cgroups made at hierarchy roots, outside the tests' own cgroup: %v\n", leaked)
		return max(code, 1)
	}
	return code
}

func setup(tmp string) error {
	if err := installClients(); err != nil {
		return err
	}
	var err error
	if lkcBinary, err = testutil.LKCBinary(repo, tmp); err != nil {
		return err
	}
	bundle := filepath.Join(tmp, "bundle")
	if out, err := exec.Command(filepath.Join(repo, "scripts", "mkrootfs.sh"), bundle).CombinedOutput(); err != nil {
		return fmt.Errorf("making busybox rootfs: %v: %s", err, out)
	}
	imageTar = filepath.Join(tmp, "busybox.tar")
	if out, err := exec.Command("tar", "-C", filepath.Join(bundle, "rootfs"), "-cf", imageTar, ".").CombinedOutput(); err != nil {
		return fmt.Errorf("packing the rootfs: %v: %s", err, out)
	}
	if err := makeOCIArchive(tmp); err != nil {
		return err
	}
	pauseArchive, busyboxArchive, err = cri.MakeImages(tmp, filepath.Join(repo, "test", "clients", "testdata", "pause.c"), imageTar)
	return err
}

// makeOCIArchive turns the rootfs tarball into an image in an OCI archive
// (ociArchive), as `podman save --format oci-archive` makes it, with a
// Podman store of its own that is gone afterwards.
func makeOCIArchive(tmp string) error {
	store := filepath.Join(tmp, "podman-save")
	podman := func(args ...string) error {
		base := []string{"--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"),
			"--tmpdir", filepath.Join(store, "tmp"), "--storage-driver", "vfs", "--events-backend", "none"}
		cmd := exec.Command("podman", append(base, args...)...)
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("podman %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	ociArchive = filepath.Join(tmp, "busybox-oci.tar")
	const ref = "localhost/lkc-clients-busybox:oci"
	if err := podman("import", imageTar, ref); err != nil {
		return err
	}
	if err := podman("save", "--format", "oci-archive", "-o", ociArchive, ref); err != nil {
		return err
	}
	return podman("rmi", ref)
}

// requireSetup skips without root and fails when the suite could not be set up.
func requireSetup(t *testing.T) {
	t.Helper()
	testutil.RequiresRoot(t)
	if setupErr != nil {
		t.Fatal(setupErr)
	}
}

// clientPackages are the Debian packages the suite drives, by a file each
// provides: podman with conmon and CNI plugins (its network backend on
// Debian 12), containerd with ctr and the runc v2 shim, and Docker.
var clientPackages = map[string]string{
	"/usr/bin/podman":                    "podman",
	"/usr/bin/conmon":                    "conmon",
	"/usr/lib/cni/bridge":                "containernetworking-plugins",
	"/usr/bin/containerd":                "containerd",
	"/usr/bin/ctr":                       "containerd",
	"/usr/bin/containerd-shim-runc-v2":   "containerd",
	"/usr/sbin/runc":                     "runc",
	"/usr/lib/cni/portmap":               "containernetworking-plugins",
	"/usr/share/containers/seccomp.json": "golang-github-containers-common",
	"/usr/sbin/dockerd":                  "docker.io",
	"/usr/bin/docker":                    "docker.io",
}

// installClients installs the client packages from Debian when missing.
func installClients() error {
	var missing []string
	seen := map[string]bool{}
	for file, pkg := range clientPackages {
		if _, err := os.Stat(file); err != nil && !seen[pkg] {
			seen[pkg] = true
			missing = append(missing, pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	install := append([]string{"-q", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600", "install"}, missing...)
	if aptGet(install...) == nil {
		return nil
	}
	// Package lists may be missing or stale: update once and retry.
	if err := aptGet("-q", "-o", "DPkg::Lock::Timeout=600", "update"); err != nil {
		return err
	}
	return aptGet(install...)
}

func aptGet(args ...string) error {
	cmd := exec.Command("apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get %s: %v: %s", strings.Join(args, " "), err, lastLines(string(out), 10))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
