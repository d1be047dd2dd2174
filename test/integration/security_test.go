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
	"golang.org/x/sys/unix"
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
	cmd := exec.Command(lkcBinary, "--root", e.root, "create", "--bundle", b, c.id)
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

// secWaitOutput waits until file holds a line matching re and returns the
// file's contents.
func secWaitOutput(t *testing.T, file string, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(file)
		if re.Match(data) {
			return string(data)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: waited 10s for %q, got %q", file, re, data)
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

func statID(path string) (dev, ino uint64, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, err
	}
	return st.Dev, st.Ino, nil
}

// assertExeProtected checks that the executable of host pid, while it runs
// lkc, is not a writable handle on the host's lkc binary: a sealed memfd
// copy, or the host's inode reached only through a read-only mount.
func assertExeProtected(t *testing.T, pid int) {
	t.Helper()
	exe := fmt.Sprintf("/proc/%d/exe", pid)
	link, err := os.Readlink(exe)
	if err != nil {
		t.Fatalf("readlink %s: %v", exe, err)
	}
	hostDev, hostIno, err := statID(lkcBinary)
	if err != nil {
		t.Fatal(err)
	}
	dev, ino, err := statID(exe)
	if err != nil {
		t.Fatalf("stat %s: %v", exe, err)
	}
	switch {
	case strings.HasPrefix(link, "/memfd:"):
		if dev == hostDev && ino == hostIno {
			t.Errorf("%s is a memfd with the host binary's inode?", exe)
		}
	case dev == hostDev && ino == hostIno:
		var st unix.Statfs_t
		if err := unix.Statfs(exe, &st); err != nil {
			t.Fatalf("statfs %s: %v", exe, err)
		}
		if st.Flags&unix.ST_RDONLY == 0 {
			t.Errorf("%s (-> %q) is the host's lkc binary on a writable mount", exe, link)
		}
	default:
		t.Errorf("%s -> %q: neither a memfd nor the host binary (%s)", exe, link, lkcBinary)
	}
	for _, flag := range []int{unix.O_WRONLY, unix.O_RDWR, unix.O_WRONLY | unix.O_APPEND} {
		if fd, err := unix.Open(exe, flag|unix.O_CLOEXEC, 0); err == nil {
			unix.Close(fd)
			t.Errorf("open %s with flags %#x succeeded; want it refused", exe, flag)
		}
	}
}

// TestSecInitExeIsProtected: the classic CVE-2019-5736 move from the host's
// point of view. Hold an O_PATH handle on a created container's
// /proc/<init>/exe, let init exec away and exit, then reopen the handle for
// writing: with the host binary behind it, that would overwrite lkc.
func TestSecInitExeIsProtected(t *testing.T) {
	e := newEnv(t)
	before := sha256File(t, lkcBinary)
	c := e.secCreate(e.bundle([]string{"true"}, nil))
	assertExeProtected(t, c.pid)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.pid))
	if err != nil {
		t.Fatal(err)
	}
	held, err := unix.Open(fmt.Sprintf("/proc/%d/exe", c.pid), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("O_PATH open of init's exe: %v (status %s)", err, status)
	}
	defer unix.Close(held)
	e.mustLkc("start", c.id)
	e.waitStatus(c.id, "stopped")

	reopen := fmt.Sprintf("/proc/self/fd/%d", held)
	fd, err := unix.Open(reopen, unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0)
	for i := 0; err == unix.ETXTBSY && i < 200; i++ {
		// Some lkc still runs the binary; a busy text file hides the answer.
		time.Sleep(10 * time.Millisecond)
		fd, err = unix.Open(reopen, unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0)
	}
	switch {
	case err == unix.ETXTBSY:
		t.Errorf("reopening init's exe for writing: still ETXTBSY after 2s, inconclusive")
	case err != nil:
		t.Logf("reopening init's exe for writing: %v", err)
	}
	if err == nil {
		defer unix.Close(fd)
		var st unix.Stat_t
		unix.Fstat(fd, &st)
		hostDev, hostIno, _ := statID(lkcBinary)
		if st.Dev == hostDev && st.Ino == hostIno {
			t.Fatalf("reopened init's exe for writing after init exited: it is the host binary %s", lkcBinary)
		}
		// A private copy: it must at least be sealed against writes.
		if _, err := unix.Write(fd, []byte{0}); err == nil {
			t.Errorf("wrote to init's copy of lkc after it exited; want a sealed copy")
		}
	}
	if after := sha256File(t, lkcBinary); after != before {
		t.Fatalf("host lkc binary changed: sha256 %s -> %s", before, after)
	}
}

// secAttacker is the container side of CVE-2019-5736: it watches its pid
// namespace for an `lkc init`, grabs a handle on its /proc/<pid>/exe (it has
// CAP_SYS_PTRACE, so init's non-dumpable flag does not stop it), tries to
// open it for writing directly, waits until that process is gone and then
// reopens the held handle for writing, as the original exploit did.
const secAttacker = `
echo ready
while :; do
  for d in /proc/[0-9]*; do
    case "$(tr '\0' ' ' <$d/cmdline 2>/dev/null)" in
    "lkc init"*) ;;
    *) continue ;;
    esac
    (: >>$d/exe) 2>/dev/null && echo DIRECT-WRITE-OPENED
    (exec 3<$d/exe) 2>/dev/null || continue
    exec 3<$d/exe
    echo "HOLDING ${d#/proc/} $(readlink $d/exe)"
    while [ -e $d/exe ]; do
      (: >>$d/exe) 2>/dev/null && echo DIRECT-WRITE-OPENED
      sleep 0.02
    done
    # Until every lkc has exited the host binary may be busy (ETXTBSY),
    # which would hide whether the handle is writable at all.
    i=0
    while :; do
      err=$( (: >>/proc/$$/fd/3) 2>&1 )
      case "$err" in
      *busy*) [ $i -lt 200 ] || break; i=$((i+1)); sleep 0.02 ;;
      *) break ;;
      esac
    done
    if [ -z "$err" ]; then
      case "$(readlink /proc/$$/fd/3)" in
      /memfd:*)
        if (printf x >>/proc/$$/fd/3) 2>/dev/null; then echo MEMFD-WRITTEN; else echo "WRITE-DENIED sealed memfd"; fi ;;
      *) echo REOPENED-FOR-WRITE ;;
      esac
    else
      echo "WRITE-DENIED $err"
    fi
    echo DONE
    exit 0
  done
  sleep 0.02
done
`

// TestSecShebangSelfExeCannotOverwriteHost runs the attack end to end. The
// victim's entrypoint is a script starting with #!/proc/self/exe, which makes
// the kernel execute whatever init runs from; it shares a pid namespace with
// the attacker, which holds init's exe across the victim's whole life.
func TestSecShebangSelfExeCannotOverwriteHost(t *testing.T) {
	e := newEnv(t)
	before := sha256File(t, lkcBinary)

	attackRoot := e.writableRootfs()
	if err := os.WriteFile(filepath.Join(attackRoot, "attack.sh"), []byte(secAttacker), 0o755); err != nil {
		t.Fatal(err)
	}
	attacker := e.secCreate(e.bundle([]string{"sh", "/attack.sh"}, func(s *specs.Spec) {
		s.Root.Path = attackRoot
		addCaps(s, "CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER")
	}))
	e.mustLkc("start", attacker.id)
	secWaitOutput(t, attacker.stdout, regexp.MustCompile(`(?m)^ready$`))

	victimRoot := e.writableRootfs()
	if err := os.WriteFile(filepath.Join(victimRoot, "evil.sh"), []byte("#!/proc/self/exe\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	victim := e.secCreate(e.bundle([]string{"/evil.sh"}, func(s *specs.Spec) {
		s.Root.Path = victimRoot
		for i, ns := range s.Linux.Namespaces {
			if ns.Type == specs.PIDNamespace {
				s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/pid", attacker.pid)
			}
		}
	}))
	assertExeProtected(t, victim.pid)
	assertNoHostBinaryIn(t, attacker.id)
	assertNoHostBinaryIn(t, victim.id)
	secWaitOutput(t, attacker.stdout, regexp.MustCompile(`(?m)^HOLDING `))

	e.mustLkc("start", victim.id)
	out := secWaitOutput(t, attacker.stdout, regexp.MustCompile(`(?m)^DONE$`))
	t.Logf("attacker: %s", out)
	if strings.Contains(out, "DIRECT-WRITE-OPENED") || strings.Contains(out, "REOPENED-FOR-WRITE") || strings.Contains(out, "MEMFD-WRITTEN") {
		t.Errorf("the container opened lkc's binary for writing:\n%s", out)
	}
	if !strings.Contains(out, "WRITE-DENIED") || strings.Contains(out, "busy") {
		t.Errorf("attacker's reopen was not denied for good (a busy text file only hides the question):\n%s", out)
	}
	// The shebang made the victim execute lkc's protected copy, which
	// refused "/evil.sh" as a command: proof the script really ran it.
	e.waitStatus(victim.id, "stopped")
	if msg, _ := os.ReadFile(victim.stderr); !strings.Contains(string(msg), "/evil.sh") {
		t.Errorf("victim stderr %q: want lkc's complaint about /evil.sh (the shebang ran lkc)", msg)
	}
	if after := sha256File(t, lkcBinary); after != before {
		t.Fatalf("host lkc binary changed: sha256 %s -> %s", before, after)
	}
}

// assertNoHostBinaryIn checks every process of container id, as the host
// sees it: none may run the host's lkc binary through a writable handle.
func assertNoHostBinaryIn(t *testing.T, id string) {
	t.Helper()
	hostDev, hostIno, err := statID(lkcBinary)
	if err != nil {
		t.Fatal(err)
	}
	pids := processesIn(id)
	if len(pids) == 0 {
		t.Fatalf("container %s has no processes", id)
	}
	for _, pid := range pids {
		exe := fmt.Sprintf("/proc/%d/exe", pid)
		dev, ino, err := statID(exe)
		if err != nil || dev != hostDev || ino != hostIno {
			continue
		}
		var st unix.Statfs_t
		if err := unix.Statfs(exe, &st); err != nil || st.Flags&unix.ST_RDONLY == 0 {
			t.Errorf("process %d of %s runs the host lkc binary through a writable mount", pid, id)
		}
	}
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
