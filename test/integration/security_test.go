package integration

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// secContainer is a container created with its stdio on files, so the
// create returns while the container lives and its output can be read.
type secContainer struct {
	id, stdout, stderr string
	pid                int // init's host pid
}

// secCreate creates (but does not start) a container from bundle b.
func (e *env) secCreate(b string) secContainer {
	e.t.Helper()
	dir := e.t.TempDir()
	c := secContainer{id: e.id(), stdout: filepath.Join(dir, "stdout"), stderr: filepath.Join(dir, "stderr")}
	out, err := os.Create(c.stdout)
	if err != nil {
		e.t.Fatal(err)
	}
	defer out.Close()
	errf, err := os.Create(c.stderr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer errf.Close()
	cmd := exec.Command(e.bin, "--root", e.root, "create", "--bundle", b, c.id)
	cmd.Stdout, cmd.Stderr = out, errf
	if err := cmd.Run(); err != nil {
		msg, _ := os.ReadFile(c.stderr)
		e.t.Fatalf("lkc create %s: %v: %s", c.id, err, msg)
	}
	var st struct{ Pid int }
	if err := json.Unmarshal([]byte(e.mustLkc("state", c.id)), &st); err != nil || st.Pid <= 0 {
		e.t.Fatalf("state %s: no init pid (%v)", c.id, err)
	}
	c.pid = st.Pid
	return c
}

// secWaitOutput waits up to 10 s until file holds a line matching re and
// returns the file's contents.
func secWaitOutput(t *testing.T, file string, re *regexp.Regexp) string {
	t.Helper()
	return waitOutput(t, file, re, 10*time.Second)
}

// waitOutput waits up to timeout until file holds a line matching re and
// returns the file's contents.
func waitOutput(t *testing.T, file string, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		data, _ := os.ReadFile(file)
		if re.Match(data) {
			return string(data)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: waited %v for %q, got %q", file, timeout, re, data)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func addCaps(s *specs.Spec, caps ...string) {
	c := s.Process.Capabilities
	c.Bounding = append(c.Bounding, caps...)
	c.Effective = append(c.Effective, caps...)
	c.Permitted = append(c.Permitted, caps...)
}

// TestSecMountDestinationsStayInRootfs: mount destinations are resolved
// inside the rootfs (CVE-2021-30465 class). Symlinks in the rootfs, absolute
// and relative, point at a host directory; ".." climbs above /. Every tmpfs
// must land inside the rootfs and the host directory must stay untouched.
func TestSecMountDestinationsStayInRootfs(t *testing.T) {
	e := newEnv(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "canary"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	escape := "sec-escape-" + randHex(t)
	hostEscape := filepath.Join("/tmp", escape)
	t.Cleanup(func() { os.RemoveAll(hostEscape) })

	root := e.writableRootfs()
	if err := os.Symlink(host, filepath.Join(root, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(strings.Repeat("../", 12)+strings.TrimPrefix(host, "/"), filepath.Join(root, "evil2")); err != nil {
		t.Fatal(err)
	}
	r := e.run([]string{"cat", "/proc/self/mountinfo"}, func(s *specs.Spec) {
		s.Root.Path = root
		for _, dest := range []string{"/evil/x", "/evil2/y", "/../../../../tmp/" + escape} {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: []string{"size=64k"}})
		}
	})
	if r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	// Inside, each tmpfs sits at the path the symlink names, in the rootfs.
	for _, want := range []string{host + "/x", host + "/y", "/tmp/" + escape} {
		if !mountinfoHas(r.stdout, want, "tmpfs") {
			t.Errorf("container has no tmpfs at %s:\n%s", want, r.stdout)
		}
	}
	entries, err := os.ReadDir(host)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("host dir %s changed: %v", host, names(entries))
	}
	if _, err := os.Lstat(hostEscape); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s appeared on the host (err %v)", hostEscape, err)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, p := range []string{host, hostEscape} {
		if mountinfoHas(string(mounts), p+"/x", "") || mountinfoHas(string(mounts), p+"/y", "") || mountinfoHas(string(mounts), p, "") {
			t.Errorf("host has a mount at or under %s:\n%s", p, mounts)
		}
	}
	// The mount points were made inside the rootfs copy instead.
	for _, p := range []string{host + "/x", host + "/y", "/tmp/" + escape} {
		if fi, err := os.Stat(filepath.Join(root, p)); err != nil || !fi.IsDir() {
			t.Errorf("mount point %s not created inside the rootfs: %v", p, err)
		}
	}
}

// mountinfoHas reports whether mountinfo lists a mount at point (of fstype,
// unless empty).
func mountinfoHas(mountinfo, point, fstype string) bool {
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[4] != point {
			continue
		}
		sep := strings.Index(line, " - ")
		if fstype == "" || (sep >= 0 && strings.HasPrefix(line[sep+3:], fstype+" ")) {
			return true
		}
	}
	return false
}

func randHex(t *testing.T) string {
	var b [4]byte
	f, err := os.Open("/dev/urandom")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.ReadFull(f, b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// TestSecNoHostFdsInContainer: nothing lkc opened reaches the container's
// process (CVE-2024-21626 class): only stdio and ls's own directory fd.
func TestSecNoHostFdsInContainer(t *testing.T) {
	e := newEnv(t)
	for _, how := range []string{"run", "create+start"} {
		var out string
		args := []string{"ls", "-l", "/proc/self/fd/"}
		if how == "run" {
			r := e.run(args, nil)
			if r.code != 0 {
				t.Fatalf("run: %v", r)
			}
			out = r.stdout
		} else {
			c := e.secCreate(e.bundle(args, nil))
			e.mustLkc("start", c.id)
			e.waitStatus(c.id, "stopped")
			data, _ := os.ReadFile(c.stdout)
			out = string(data)
		}
		checkOnlyStdio(t, how, out)
	}
}

// checkOnlyStdio fails unless the `ls -l /proc/self/fd/` output out shows
// fds 0, 1, 2 and at most ls's own directory.
func checkOnlyStdio(t *testing.T, how, out string) {
	t.Helper()
	fds := parseLsFds(t, out)
	for fd, target := range fds {
		if fd <= 2 {
			continue
		}
		if fd == 3 && regexp.MustCompile(`^/proc/[0-9]+/fd$`).MatchString(target) {
			continue // ls reading the directory
		}
		t.Errorf("%s: container process has fd %d -> %s", how, fd, target)
	}
	for fd := 0; fd <= 2; fd++ {
		if _, ok := fds[fd]; !ok {
			t.Errorf("%s: fd %d missing: %v", how, fd, fds)
		}
	}
}

// TestSecCallerFdsDoNotLeak: fds the caller of lkc leaves open without
// close-on-exec (here a host directory and the state root) do not reach the
// container unless --preserve-fds asks for them.
func TestSecCallerFdsDoNotLeak(t *testing.T) {
	e := newEnv(t)
	var extra []*os.File
	for _, p := range []string{"/sys/fs/cgroup", e.root, "/"} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		extra = append(extra, f)
	}
	b := e.bundle([]string{"ls", "-l", "/proc/self/fd/"}, nil)
	cmd := exec.Command(lkcBinary, "--root", e.root, "run", "--bundle", b, e.id())
	cmd.ExtraFiles = extra
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run with inherited fds: %v: %s", err, out)
	}
	checkOnlyStdio(t, "run with inherited fds", string(out))
}

var lsFdLine = regexp.MustCompile(`\s(\d+) -> (.*)$`)

func parseLsFds(t *testing.T, out string) map[int]string {
	t.Helper()
	fds := map[int]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if m := lsFdLine.FindStringSubmatch(sc.Text()); m != nil {
			n, _ := strconv.Atoi(m[1])
			fds[n] = m[2]
		}
	}
	if len(fds) == 0 {
		t.Fatalf("no fds in ls output %q", out)
	}
	return fds
}

// TestSecCwdThroughProcSelfFd: process.cwd naming an fd of init (the runc
// CVE-2024-21626 exploit) either fails create cleanly or leaves the process
// in a directory inside the container.
func TestSecCwdThroughProcSelfFd(t *testing.T) {
	e := newEnv(t)
	script := `c=$(readlink /proc/self/cwd); echo "cwd=$c"; ` +
		`[ "$(stat -c %d:%i .)" = "$(stat -c %d:%i "$c" 2>/dev/null)" ] && echo same || echo differ`
	for n := 3; n <= 12; n++ {
		cwd := fmt.Sprintf("/proc/self/fd/%d", n)
		r := e.run([]string{"sh", "-c", script}, func(s *specs.Spec) { s.Process.Cwd = cwd })
		if r.code != 0 {
			msg := strings.TrimRight(r.stderr, "\n")
			if strings.Contains(msg, "\n") || !strings.Contains(msg, "process.cwd") {
				t.Errorf("cwd %s: want a one-line error about process.cwd, got %v", cwd, r)
			}
			continue
		}
		t.Logf("cwd %s accepted: %q", cwd, r.stdout)
		if strings.Contains(r.stdout, "unreachable") || !strings.Contains(r.stdout, "same") {
			t.Errorf("cwd %s: process got a cwd outside the container: %q", cwd, r.stdout)
		}
	}
}

// TestSecDevicesCgroupBlocksHostDisk: even with CAP_MKNOD, a container with
// the default device rules may make a node of the host's disk but not open it.
func TestSecDevicesCgroupBlocksHostDisk(t *testing.T) {
	e := newEnv(t)
	major, minor := hostDisk(t)
	node := fmt.Sprintf("mknod /dev/sdx b %d %d && echo made && head -c1 /dev/sdx >/dev/null", major, minor)
	r := e.run([]string{"sh", "-c", node}, func(s *specs.Spec) { addCaps(s, "CAP_MKNOD") })
	if r.code == 0 {
		t.Fatalf("container read the host disk %d:%d: %v", major, minor, r)
	}
	if !strings.Contains(r.stdout, "made") {
		t.Fatalf("mknod of a block device failed (the default rules allow it): %v", r)
	}
	if !strings.Contains(r.stderr, "Operation not permitted") {
		t.Errorf("reading the disk: want EPERM from the devices cgroup, got %v", r)
	}
}

// hostDisk returns the major and minor of the first whole disk in
// /proc/partitions, or else of any block device.
func hostDisk(t *testing.T) (int, int) {
	t.Helper()
	data, err := os.ReadFile("/proc/partitions")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			continue
		}
		major, err1 := strconv.Atoi(f[0])
		minor, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil {
			return major, minor
		}
	}
	// The vmtest guest has no disk; blockDevice falls back to a loop device.
	major, minor := blockDevice(t)
	return int(major), int(minor)
}

// TestSecCgroupOfAnotherContainerIsNotTakenOver: a config whose
// linux.cgroupsPath names another container's cgroup is refused, and the
// refusal neither kills that container's processes nor removes its cgroup.
// Both name it by an absolute path (from the hierarchy root, beneath this
// test's own cgroup), as Kubernetes and Podman do.
func TestSecCgroupOfAnotherContainerIsNotTakenOver(t *testing.T) {
	e := newEnv(t)
	parent := e.cgroupParent("victim")
	var path string
	victim := e.secCreate(e.bundle([]string{"sleep", "100"}, func(s *specs.Spec) {
		path = parent + "/victim"
		s.Linux.CgroupsPath = path
	}))
	e.mustLkc("start", victim.id)
	hs, _ := ownHierarchies()
	var dirs []string
	for _, h := range hs {
		dirs = append(dirs, filepath.Join(h.mnt, path))
	}
	b := e.bundle([]string{"true"}, func(s *specs.Spec) { s.Linux.CgroupsPath = path })
	id := e.id()
	cmd := exec.Command(lkcBinary, "--root", e.root, "create", "--bundle", b, id)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Errorf("create in another container's cgroup succeeded: %s", out)
	} else if !strings.Contains(string(out), "exists") {
		t.Errorf("create in another container's cgroup: %v: %s; want an 'exists' error", err, out)
	}
	if st := e.state(victim.id)["status"]; st != "running" {
		t.Errorf("container %s is %v after the refused create, want running", victim.id, st)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("cgroup %s of %s gone after the refused create: %v", d, victim.id, err)
		}
	}
}

// TestSecFileBindThroughSymlinkStaysInRootfs: a file bind mount whose
// destination is a symlink in the image (/etc/resolv.conf ->
// ../run/systemd/resolve/stub-resolv.conf is common) lands on what the
// symlink names inside the rootfs, as runc does, made there when missing;
// one that climbs out with ".." or names a host path absolutely stays in
// the rootfs too, and the host is left untouched.
func TestSecFileBindThroughSymlinkStaysInRootfs(t *testing.T) {
	e := newEnv(t)
	host := t.TempDir()
	src := filepath.Join(host, "src")
	if err := os.WriteFile(src, []byte("bound\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := e.writableRootfs()
	links := map[string]string{
		"etc/resolv.conf": "../run/resolve/stub.conf", // dangling, relative
		"hostname-link":   "/etc/hostname",            // existing, absolute
		"climb":           strings.Repeat("../", 12) + strings.TrimPrefix(host, "/") + "/climbed",
		"abs":             host + "/absolute",
	}
	for name, target := range links {
		os.Remove(filepath.Join(root, name))
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	inside := []string{"/run/resolve/stub.conf", "/etc/hostname", host + "/climbed", host + "/absolute"}
	r := e.run([]string{"cat", inside[0], inside[1], inside[2], inside[3]}, func(s *specs.Spec) {
		s.Root.Path = root
		for _, dest := range []string{"/etc/resolv.conf", "/hostname-link", "/climb", "/abs"} {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: dest, Type: "bind", Source: src, Options: []string{"bind", "ro"}})
		}
	})
	if r.code != 0 || r.stdout != strings.Repeat("bound\n", 4) {
		t.Fatalf("run: %v; want each of %v to show the bound file", r, inside)
	}
	if entries, _ := os.ReadDir(host); len(entries) != 1 {
		t.Errorf("host dir %s changed: %v", host, names(entries))
	}
	for _, p := range inside {
		if fi, err := os.Lstat(filepath.Join(root, p)); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("mount point %s not a file inside the rootfs: %v", p, err)
		}
	}
}
