package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lkc-containers/lkc/internal/config"
)

// fakeV1 builds a cgroup v1 tree in a temp dir (no cgroup.controllers at
// its root, so New takes it for v1) with the caller in /user.slice of each hierarchy.
func fakeV1(t *testing.T, ctrls ...string) Host {
	t.Helper()
	dir := t.TempDir()
	h := Host{Root: filepath.Join(dir, "cgroup"), SelfCgroup: filepath.Join(dir, "self-cgroup")}
	self := "1:name=systemd:/user.slice\n0::/user.slice\n"
	for i, c := range ctrls {
		mustMkdir(t, filepath.Join(h.Root, c, "user.slice"))
		self += strings.Repeat("1", i+2) + ":" + c + ":/user.slice\n"
	}
	mustMkdir(t, filepath.Join(h.Root, "systemd", "user.slice"))
	mustWrite(t, h.SelfCgroup, self)
	return h
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, file, data string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func i64(v int64) *int64    { return &v }
func u64(v uint64) *uint64  { return &v }
func isDir(p string) bool   { fi, err := os.Stat(p); return err == nil && fi.IsDir() }
func exists2(p string) bool { _, err := os.Lstat(p); return err == nil }

func TestV1CreateSetDestroy(t *testing.T) {
	h := fakeV1(t, "memory", "pids", "cpu,cpuacct", "devices", "freezer")
	// Another container's cgroup already lives in memory's lkc directory.
	mustMkdir(t, filepath.Join(h.Root, "memory/user.slice/lkc/other"))

	m, err := New(h, "lkc/c1")
	if err != nil {
		t.Fatal(err)
	}
	paths := m.Paths()
	if len(paths) != 5 {
		t.Fatalf("paths %v: want the five controllers, not name=systemd or v2", paths)
	}
	leaf := func(ctrl string) string { return filepath.Join(h.Root, ctrl, "user.slice/lkc/c1") }
	for _, c := range []string{"memory", "pids", "cpu,cpuacct", "devices", "freezer"} {
		if paths[c] != leaf(c) {
			t.Errorf("path of %s = %q, want %q", c, paths[c], leaf(c))
		}
	}
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	tasks, cloneInto := m.Placement()
	if cloneInto != "" || len(tasks) != 5 {
		t.Errorf("Placement = %v, %q: want five tasks files on v1", tasks, cloneInto)
	}
	for _, f := range tasks {
		if filepath.Base(f) != "tasks" || !isDir(filepath.Dir(f)) {
			t.Errorf("tasks file %s is not in a created cgroup", f)
		}
	}

	files := map[string]string{
		"memory": "memory.limit_in_bytes memory.soft_limit_in_bytes memory.memsw.limit_in_bytes",
		"pids":   "pids.max", "cpu,cpuacct": "cpu.shares cpu.cfs_period_us cpu.cfs_quota_us",
		"devices": "devices.allow devices.deny",
	}
	for ctrl, names := range files {
		for _, f := range strings.Fields(names) {
			mustWrite(t, filepath.Join(leaf(ctrl), f), "")
		}
	}
	r := &config.Resources{
		MemoryLimit: i64(64 << 20), MemoryReservation: i64(32 << 20), MemorySwap: i64(128 << 20),
		PidsLimit: i64(42), CPUShares: u64(512), CPUPeriod: u64(50000), CPUQuota: i64(25000),
		Devices: []config.DeviceRule{
			{Allow: false, Type: 'a', Major: -1, Minor: -1, Access: "rwm"},
			{Allow: true, Type: 'c', Major: 1, Minor: 3, Access: "rwm"},
			{Allow: true, Type: 'b', Major: -1, Minor: -1, Access: "m"},
		},
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"memory/memory.limit_in_bytes": "67108864", "memory/memory.soft_limit_in_bytes": "33554432",
		"memory/memory.memsw.limit_in_bytes": "134217728", "pids/pids.max": "42",
		"cpu,cpuacct/cpu.shares": "512", "cpu,cpuacct/cpu.cfs_period_us": "50000",
		"cpu,cpuacct/cpu.cfs_quota_us": "25000",
		// Each rule is its own write; a plain file keeps the last.
		"devices/devices.deny": "a", "devices/devices.allow": "b *:* m",
	}
	for f, v := range want {
		ctrl, file, _ := strings.Cut(f, "/")
		if got := read(t, filepath.Join(leaf(ctrl), file)); got != v {
			t.Errorf("%s = %q, want %q", f, got, v)
		}
	}

	// Without swap accounting the memsw file is missing: a clear refusal.
	os.Remove(filepath.Join(leaf("memory"), "memory.memsw.limit_in_bytes"))
	if err := m.Set(&config.Resources{MemorySwap: i64(1 << 30)}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("swap without accounting: %v, want ErrNotSupported", err)
	}

	for ctrl, names := range files {
		for _, f := range strings.Fields(names) {
			os.Remove(filepath.Join(leaf(ctrl), f))
		}
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"memory", "pids", "cpu,cpuacct", "devices", "freezer"} {
		if exists2(leaf(c)) {
			t.Errorf("%s left behind", leaf(c))
		}
	}
	if !isDir(filepath.Join(h.Root, "memory/user.slice/lkc/other")) {
		t.Error("Destroy removed another container's cgroup")
	}
	for _, c := range []string{"pids", "cpu,cpuacct", "devices", "freezer"} {
		if exists2(filepath.Join(h.Root, c, "user.slice/lkc")) {
			t.Errorf("%s/user.slice/lkc, made by Create, left behind", c)
		}
	}
	if !isDir(filepath.Join(h.Root, "memory/user.slice/lkc")) || !isDir(filepath.Join(h.Root, "pids/user.slice")) {
		t.Error("Destroy removed directories Create did not make")
	}
}

// TestV1FrozenWhileFreezing: a freezer still FREEZING (a task moved in
// has yet to freeze) is frozen, as v2 reads its cgroup.freeze.
func TestV1FrozenWhileFreezing(t *testing.T) {
	h := fakeV1(t, "freezer")
	m, err := New(h, "lkc/c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	for state, want := range map[string]bool{"THAWED": false, "FREEZING": true, "FROZEN": true} {
		mustWrite(t, filepath.Join(m.Paths()["freezer"], "freezer.state"), state+"\n")
		if got, err := m.Frozen(); got != want || err != nil {
			t.Errorf("freezer.state %s: Frozen() = %v, %v; want %v", state, got, err, want)
		}
	}
}

func TestV1SetWithoutController(t *testing.T) {
	h := fakeV1(t, "memory")
	m, err := New(h, "c")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	defer m.Destroy()
	if err := m.Set(&config.Resources{PidsLimit: i64(5)}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("pids limit without a pids hierarchy: %v, want ErrNotSupported", err)
	}
}

// TestV1CreateOverExisting: a cgroup that already exists is not taken over,
// and Destroy after the failed Create leaves it alone.
func TestV1CreateOverExisting(t *testing.T) {
	h := fakeV1(t, "memory", "pids", "devices")
	for _, c := range []string{"memory", "pids", "devices"} {
		mustMkdir(t, filepath.Join(h.Root, c, "user.slice/taken"))
	}
	m, err := New(h, "taken")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Create(); !errors.Is(err, os.ErrExist) {
		t.Fatalf("Create over an existing cgroup: %v, want ErrExist", err)
	}
	m.Destroy()
	for _, c := range []string{"memory", "pids", "devices"} {
		if !isDir(filepath.Join(h.Root, c, "user.slice/taken")) {
			t.Errorf("Destroy after a failed Create removed the existing %s cgroup", c)
		}
	}
}

func TestInheritCpuset(t *testing.T) {
	dir := t.TempDir()
	parent, child := filepath.Join(dir, "p"), filepath.Join(dir, "p/c")
	mustMkdir(t, child)
	mustWrite(t, filepath.Join(parent, "cpuset.cpus"), "0-3\n")
	mustWrite(t, filepath.Join(parent, "cpuset.mems"), "0\n")
	mustWrite(t, filepath.Join(child, "cpuset.cpus"), "")
	mustWrite(t, filepath.Join(child, "cpuset.mems"), "")
	if err := inheritCpuset(child, []string{child}); err != nil {
		t.Fatal(err)
	}
	checkCpuset(t, child, "0-3", "0")
}

// TestInheritCpusetFillsEmptyParents: a parent another tool made without
// filling its cpuset (a pod's, made before its first container) gets its
// own parent's, as runc gives it; a parent that has CPUs keeps them.
func TestInheritCpusetFillsEmptyParents(t *testing.T) {
	dir := t.TempDir()
	top, pods, pod, ctr := filepath.Join(dir, "t"), filepath.Join(dir, "t/pods"), filepath.Join(dir, "t/pods/p"), filepath.Join(dir, "t/pods/p/c")
	mustMkdir(t, ctr)
	mustWrite(t, filepath.Join(top, "cpuset.cpus"), "0-1\n")
	mustWrite(t, filepath.Join(top, "cpuset.mems"), "0\n")
	for _, d := range []string{pods, pod, ctr} {
		mustWrite(t, filepath.Join(d, "cpuset.cpus"), "\n")
		mustWrite(t, filepath.Join(d, "cpuset.mems"), "\n")
	}
	mustWrite(t, filepath.Join(pods, "cpuset.cpus"), "1\n")
	if err := inheritCpuset(ctr, []string{ctr}); err != nil {
		t.Fatal(err)
	}
	checkCpuset(t, pods, "1", "0")
	checkCpuset(t, pod, "1", "0")
	checkCpuset(t, ctr, "1", "0")
}

func checkCpuset(t *testing.T, dir, cpus, mems string) {
	t.Helper()
	if got := strings.TrimSpace(read(t, filepath.Join(dir, "cpuset.cpus"))); got != cpus {
		t.Errorf("%s: cpuset.cpus = %q; want %q", dir, got, cpus)
	}
	if got := strings.TrimSpace(read(t, filepath.Join(dir, "cpuset.mems"))); got != mems {
		t.Errorf("%s: cpuset.mems = %q; want %q", dir, got, mems)
	}
}

func TestNewRefusesEmptyHost(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "self")
	mustWrite(t, self, "1:name=systemd:/\n")
	if _, err := New(Host{Root: dir, SelfCgroup: self}, "c"); err == nil {
		t.Error("New without any v1 controller succeeded")
	}
	if _, err := New(Host{Root: filepath.Join(dir, "missing"), SelfCgroup: self}, "c"); err == nil {
		t.Error("New with a missing root succeeded")
	}
}

func TestMkdirTrackedStaysBelowBase(t *testing.T) {
	base := t.TempDir()
	if _, err := mkdirTracked(base, filepath.Join(base, "../escape")); err == nil {
		t.Error("mkdirTracked outside base succeeded")
	}
	made, err := mkdirTracked(base, filepath.Join(base, "a/b/c"))
	if err != nil || len(made) != 3 || made[2] != filepath.Join(base, "a/b/c") {
		t.Errorf("mkdirTracked = %v, %v", made, err)
	}
}

func TestDeviceRule(t *testing.T) {
	cases := map[string]config.DeviceRule{
		"a":           {Type: 'a', Major: 1, Minor: 2, Access: "r"},
		"c 1:3 rwm":   {Type: 'c', Major: 1, Minor: 3, Access: "rwm"},
		"b *:* m":     {Type: 'b', Major: -1, Minor: -1, Access: "m"},
		"c 136:* rwm": {Type: 'c', Major: 136, Minor: -1, Access: "rwm"},
	}
	for want, r := range cases {
		if got := deviceRule(r); got != want {
			t.Errorf("deviceRule(%+v) = %q, want %q", r, got, want)
		}
	}
}

func TestSharesToWeight(t *testing.T) {
	for shares, want := range map[uint64]uint64{0: 100, 2: 1, 1024: 39, 262144: 10000} {
		if got := sharesToWeight(shares); got != want {
			t.Errorf("sharesToWeight(%d) = %d, want %d", shares, got, want)
		}
	}
}

func TestCPUMax(t *testing.T) {
	cases := []struct {
		q    *int64
		p    *uint64
		want string
	}{
		{nil, nil, "max 100000"},
		{i64(50000), nil, "50000 100000"},
		{i64(-1), u64(20000), "max 20000"},
		{i64(3000), u64(10000), "3000 10000"},
	}
	for _, c := range cases {
		if got := cpuMax(c.q, c.p); got != c.want {
			t.Errorf("cpuMax = %q, want %q", got, c.want)
		}
	}
}

func TestV2SetOnFakeDir(t *testing.T) {
	dir := t.TempDir()
	m := &v2{root: dir, dir: dir}
	for _, f := range []string{"memory.max", "memory.low", "memory.swap.max", "pids.max", "cpu.weight", "cpu.max", "cpuset.cpus", "cpuset.mems"} {
		mustWrite(t, filepath.Join(dir, f), "")
	}
	r := &config.Resources{
		MemoryLimit: i64(100), MemoryReservation: i64(-1), MemorySwap: i64(300),
		PidsLimit: i64(-1), CPUShares: u64(1024), CPUQuota: i64(5000), CPUs: "0-1", Mems: "0",
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"memory.max": "100", "memory.low": "max", "memory.swap.max": "200", "pids.max": "max",
		"cpu.weight": "39", "cpu.max": "5000 100000", "cpuset.cpus": "0-1", "cpuset.mems": "0",
	}
	for f, v := range want {
		if got := read(t, filepath.Join(dir, f)); got != v {
			t.Errorf("%s = %q, want %q", f, got, v)
		}
	}
	if tasks, into := m.Placement(); tasks != nil || into != dir {
		t.Errorf("v2 Placement = %v, %q", tasks, into)
	}
}

func TestFromPaths(t *testing.T) {
	if _, ok := FromPaths(map[string]string{"": "/x"}, nil).(*v2); !ok {
		t.Error("a lone v2 path is not a v2 manager")
	}
	if _, ok := FromPaths(map[string]string{"memory": "/x", "pids": "/y"}, nil).(*v1); !ok {
		t.Error("v1 paths are not a v1 manager")
	}
}

// TestDestroyRemovesSubCgroups: the sub-cgroups a container made go with
// its cgroup, deepest first, and a cgroup without any goes at once.
func TestDestroyRemovesSubCgroups(t *testing.T) {
	root := t.TempDir()
	paths := map[string]string{"memory": filepath.Join(root, "memory", "ctr"), "pids": filepath.Join(root, "pids", "ctr")}
	for _, d := range []string{"memory/ctr/a/b", "memory/ctr/c", "pids/ctr"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := FromPaths(paths, nil).Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"memory/ctr", "pids/ctr"} {
		if exists2(filepath.Join(root, d)) {
			t.Errorf("%s left behind", d)
		}
	}
	if !isDir(filepath.Join(root, "memory")) || !isDir(filepath.Join(root, "pids")) {
		t.Error("Destroy removed the hierarchy roots")
	}
}

// TestAbsolutePathFromRoot: an absolute path is placed from the root of
// every hierarchy, whatever the caller's own cgroup; a relative one
// beneath it.
func TestAbsolutePathFromRoot(t *testing.T) {
	h := fakeV1(t, "memory", "pids")
	m, err := New(h, "/kubepods/pod1/c1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"memory", "pids"} {
		if want := filepath.Join(h.Root, c, "kubepods/pod1/c1"); m.Paths()[c] != want {
			t.Errorf("path of %s = %q, want %q", c, m.Paths()[c], want)
		}
	}
	if got, want := under("/cg", "/own", "/a/b"), "/cg/a/b"; got != want {
		t.Errorf("v2 absolute: %q, want %q", got, want)
	}
	if got, want := under("/cg", "/own", "a/b"), "/cg/own/a/b"; got != want {
		t.Errorf("v2 relative: %q, want %q", got, want)
	}
}

// TestDestroyRemovesMadeParents: the parents Create made are recorded and,
// through a manager rebuilt from the state, removed on Destroy while
// empty; a parent another container uses stays, and a parent that existed
// before Create is never removed.
func TestDestroyRemovesMadeParents(t *testing.T) {
	h := fakeV1(t, "memory", "pids")
	mustMkdir(t, filepath.Join(h.Root, "memory/pod"))
	m, err := New(h, "/pod/qos/c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		filepath.Join(h.Root, "memory/pod/qos"),
		filepath.Join(h.Root, "pids/pod"), filepath.Join(h.Root, "pids/pod/qos"),
	}
	got := append([]string(nil), m.Parents()...)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("Parents = %v, want %v", got, want)
	}
	// A second container in the same parent, made by the first.
	other := filepath.Join(h.Root, "pids/pod/qos/c2")
	mustMkdir(t, other)
	if err := FromPaths(m.Paths(), m.Parents()).Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"memory/pod/qos", "memory/pod/qos/c1", "pids/pod/qos/c1"} {
		if exists2(filepath.Join(h.Root, gone)) {
			t.Errorf("%s left behind", gone)
		}
	}
	for _, kept := range []string{"memory/pod", "pids/pod/qos/c2"} {
		if !isDir(filepath.Join(h.Root, kept)) {
			t.Errorf("%s removed", kept)
		}
	}
}
