package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lkc-containers/lkc/internal/config"
)

func u16(v uint16) *uint16 { return &v }
func u32(v uint32) *uint32 { return &v }
func boolp(v bool) *bool   { return &v }

// fullResources sets every field beyond the basic limits.
func fullResources() *config.Resources {
	return &config.Resources{
		KernelMemory: i64(-1), KernelMemoryTCP: i64(1 << 20), MemorySwappiness: u64(10), OOMKillDisable: true,
		MemoryUseHierarchy: boolp(true),
		CPUQuota:           i64(20000), CPUBurst: u64(5000), CPUIdle: i64(1),
		CPURealtimePeriod: u64(1000000), CPURealtimeRuntime: i64(500000),
		BlkioWeight: u16(500), BlkioLeafWeight: u16(300),
		BlkioWeightDevices:     []config.WeightDevice{{Major: 8, Minor: 0, Weight: u16(200), LeafWeight: u16(100)}},
		BlkioThrottleReadBps:   []config.ThrottleDevice{{Major: 8, Minor: 0, Rate: 1048576}},
		BlkioThrottleWriteBps:  []config.ThrottleDevice{{Major: 8, Minor: 16, Rate: 2097152}},
		BlkioThrottleReadIOPS:  []config.ThrottleDevice{{Major: 8, Minor: 0, Rate: 100}},
		BlkioThrottleWriteIOPS: []config.ThrottleDevice{{Major: 8, Minor: 0, Rate: 50}},
		HugepageLimits:         []config.HugepageLimit{{Pagesize: "2MB", Limit: 8 << 20}},
		NetClassID:             u32(0x100001), NetPriorities: []config.NetPriority{{Name: "eth0", Priority: 7}},
		Rdma: map[string]config.RdmaLimit{"mlx5_0": {HcaHandles: u32(2), HcaObjects: u32(2000)}, "hfi1": {HcaObjects: u32(9)}},
	}
}

// recordingTree creates files in dir so writes land; each file keeps the
// last write, as a plain file does.
func recordingTree(t *testing.T, dir string, files ...string) {
	t.Helper()
	mustMkdir(t, dir)
	for _, f := range files {
		mustWrite(t, filepath.Join(dir, f), "")
	}
}

func checkFiles(t *testing.T, base string, want map[string]string) {
	t.Helper()
	for f, v := range want {
		if got := read(t, filepath.Join(base, f)); got != v {
			t.Errorf("%s = %q, want %q", f, got, v)
		}
	}
}

func TestV1SetEveryResource(t *testing.T) {
	ctrls := []string{"memory", "cpu,cpuacct", "blkio", "hugetlb", "net_cls,net_prio", "rdma"}
	h := fakeV1(t, ctrls...)
	m, err := New(h, "c")
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(ctrl string) string { return filepath.Join(h.Root, ctrl, "user.slice/c") }
	files := map[string]string{
		"memory":           "memory.kmem.limit_in_bytes memory.kmem.tcp.limit_in_bytes memory.swappiness memory.oom_control memory.use_hierarchy",
		"cpu,cpuacct":      "cpu.cfs_quota_us cpu.cfs_burst_us cpu.idle cpu.rt_period_us cpu.rt_runtime_us",
		"blkio":            "blkio.weight blkio.leaf_weight blkio.weight_device blkio.leaf_weight_device blkio.throttle.read_bps_device blkio.throttle.write_bps_device blkio.throttle.read_iops_device blkio.throttle.write_iops_device",
		"hugetlb":          "hugetlb.2MB.limit_in_bytes",
		"net_cls,net_prio": "net_cls.classid net_prio.ifpriomap",
		"rdma":             "rdma.max",
	}
	for ctrl, names := range files {
		recordingTree(t, leaf(ctrl), strings.Fields(names)...)
	}
	if err := m.Set(fullResources()); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, h.Root, map[string]string{
		"memory/user.slice/c/memory.kmem.limit_in_bytes":      "-1",
		"memory/user.slice/c/memory.kmem.tcp.limit_in_bytes":  "1048576",
		"memory/user.slice/c/memory.swappiness":               "10",
		"memory/user.slice/c/memory.oom_control":              "1",
		"memory/user.slice/c/memory.use_hierarchy":            "1",
		"cpu,cpuacct/user.slice/c/cpu.cfs_quota_us":           "20000",
		"cpu,cpuacct/user.slice/c/cpu.cfs_burst_us":           "5000",
		"cpu,cpuacct/user.slice/c/cpu.idle":                   "1",
		"cpu,cpuacct/user.slice/c/cpu.rt_period_us":           "1000000",
		"cpu,cpuacct/user.slice/c/cpu.rt_runtime_us":          "500000",
		"blkio/user.slice/c/blkio.weight":                     "500",
		"blkio/user.slice/c/blkio.leaf_weight":                "300",
		"blkio/user.slice/c/blkio.weight_device":              "8:0 200",
		"blkio/user.slice/c/blkio.leaf_weight_device":         "8:0 100",
		"blkio/user.slice/c/blkio.throttle.read_bps_device":   "8:0 1048576",
		"blkio/user.slice/c/blkio.throttle.write_bps_device":  "8:16 2097152",
		"blkio/user.slice/c/blkio.throttle.read_iops_device":  "8:0 100",
		"blkio/user.slice/c/blkio.throttle.write_iops_device": "8:0 50",
		"hugetlb/user.slice/c/hugetlb.2MB.limit_in_bytes":     "8388608",
		"net_cls,net_prio/user.slice/c/net_cls.classid":       "1048577",
		"net_cls,net_prio/user.slice/c/net_prio.ifpriomap":    "eth0 7",
		// One write per device, in name order; the file keeps the last.
		"rdma/user.slice/c/rdma.max": "mlx5_0 hca_handle=2 hca_object=2000",
	})
	if len(Ignored(m, fullResources())) != 0 {
		t.Errorf("Ignored on v1 with every file present: %v", Ignored(m, fullResources()))
	}

	// Kernel memory files gone (kernels since 6.1 dropped kmem.limit):
	// skipped, and reported for a warning.
	os.Remove(filepath.Join(leaf("memory"), "memory.kmem.limit_in_bytes"))
	if err := m.Set(&config.Resources{KernelMemory: i64(1 << 20)}); err != nil {
		t.Errorf("kernel memory without its file: %v, want it skipped", err)
	}
	if w := Ignored(m, &config.Resources{KernelMemory: i64(1 << 20)}); len(w) != 1 || !strings.Contains(w[0].Error(), "memory.kernel ignored") {
		t.Errorf("Ignored = %v", w)
	}
	// A zero burst or idle is a no-op where the kernel lacks the file; a
	// real one is refused naming the key.
	os.Remove(filepath.Join(leaf("cpu,cpuacct"), "cpu.cfs_burst_us"))
	if err := m.Set(&config.Resources{CPUBurst: u64(0)}); err != nil {
		t.Errorf("burst 0 without cpu.cfs_burst_us: %v", err)
	}
	err = m.Set(&config.Resources{CPUBurst: u64(10)})
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "linux.resources.cpu.burst") {
		t.Errorf("burst without cpu.cfs_burst_us: %v", err)
	}
	err = m.Set(&config.Resources{Unified: map[string]string{"memory.high": "1"}})
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "linux.resources.unified") {
		t.Errorf("unified on v1: %v", err)
	}
}

// TestV1BlkioBFQ: without CFQ's blkio.weight the BFQ files take weights.
func TestV1BlkioBFQ(t *testing.T) {
	h := fakeV1(t, "blkio")
	m, _ := New(h, "c")
	leaf := filepath.Join(h.Root, "blkio/user.slice/c")
	recordingTree(t, leaf, "blkio.bfq.weight", "blkio.bfq.weight_device")
	r := &config.Resources{BlkioWeight: u16(100), BlkioWeightDevices: []config.WeightDevice{{Major: 254, Minor: 0, Weight: u16(300)}}}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, leaf, map[string]string{"blkio.bfq.weight": "100", "blkio.bfq.weight_device": "254:0 300"})
	err := m.Set(&config.Resources{BlkioLeafWeight: u16(100)})
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "linux.resources.blockIO.leafWeight") {
		t.Errorf("leaf weight without CFQ: %v", err)
	}
}

// TestV1MissingHierarchy: a resource whose controller is not mounted fails
// naming the key, as runc fails to set a limit it has no cgroup for.
func TestV1MissingHierarchy(t *testing.T) {
	h := fakeV1(t, "memory")
	m, _ := New(h, "c")
	cases := map[string]*config.Resources{
		"hugepageLimits":  {HugepageLimits: []config.HugepageLimit{{Pagesize: "2MB", Limit: 1}}},
		"network.classID": {NetClassID: u32(1)},
		"rdma":            {Rdma: map[string]config.RdmaLimit{"mlx5_0": {}}},
		"blockIO.weight":  {BlkioWeight: u16(100)},
	}
	for key, r := range cases {
		err := m.Set(r)
		if !errors.Is(err, ErrNotSupported) || !strings.HasPrefix(err.Error(), "linux.resources."+key+":") {
			t.Errorf("%s without its hierarchy: %v", key, err)
		}
	}
}

func TestV2SetEveryResource(t *testing.T) {
	dir := t.TempDir()
	m := &v2{root: dir, dir: dir}
	recordingTree(t, dir, "cpu.max", "cpu.max.burst", "cpu.idle", "io.weight", "io.max", "hugetlb.2MB.max", "hugetlb.2MB.rsvd.max", "rdma.max", "memory.high", "memory.oom.group")
	r := fullResources()
	r.CPURealtimePeriod, r.CPURealtimeRuntime = nil, nil
	r.Unified = map[string]string{"memory.high": "1073741824", "memory.oom.group": "1"}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, map[string]string{
		"cpu.max": "20000 100000", "cpu.max.burst": "5000", "cpu.idle": "1",
		// No BFQ: io.weight on its own scale; the last write is the device's.
		"io.weight": "8:0 1920",
		// One line per device; the file keeps the last, 8:16.
		"io.max":          "8:16 wbps=2097152",
		"hugetlb.2MB.max": "8388608", "hugetlb.2MB.rsvd.max": "8388608",
		"rdma.max":    "mlx5_0 hca_handle=2 hca_object=2000",
		"memory.high": "1073741824", "memory.oom.group": "1",
	})
	var keys []string
	for _, w := range Ignored(m, r) {
		if !errors.Is(w, ErrNotSupported) {
			t.Errorf("warning %v is not ErrNotSupported", w)
		}
		keys = append(keys, strings.TrimSuffix(strings.TrimPrefix(w.Error(), "linux.resources."), " ignored: "+ErrNotSupported.Error()))
	}
	want := "memory.kernel memory.kernelTCP memory.swappiness memory.disableOOMKiller network.classID network.priorities blockIO.leafWeight blockIO.weightDevice[].leafWeight"
	if strings.Join(keys, " ") != want {
		t.Errorf("Ignored on v2 = %v, want %s", keys, want)
	}
}

func TestV2IOWithBFQ(t *testing.T) {
	dir := t.TempDir()
	m := &v2{root: dir, dir: dir}
	recordingTree(t, dir, "io.bfq.weight", "io.weight")
	if err := m.Set(&config.Resources{BlkioWeight: u16(500)}); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, map[string]string{"io.bfq.weight": "500", "io.weight": ""})
	if err := m.Set(&config.Resources{BlkioWeightDevices: []config.WeightDevice{{Major: 254, Minor: 0, Weight: u16(10)}}}); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, map[string]string{"io.bfq.weight": "254:0 10"})
}

func TestV2Refuses(t *testing.T) {
	dir := t.TempDir()
	m := &v2{root: dir, dir: dir}
	err := m.Set(&config.Resources{CPURealtimeRuntime: i64(1000)})
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "linux.resources.cpu.realtimeRuntime") {
		t.Errorf("rt on v2: %v", err)
	}
	err = m.Set(&config.Resources{Unified: map[string]string{"hugetlb.1GB.max": "0"}})
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), `unified["hugetlb.1GB.max"]`) || !strings.Contains(err.Error(), "hugetlb controller") {
		t.Errorf("unified key without a file: %v", err)
	}
	err = m.Set(&config.Resources{HugepageLimits: []config.HugepageLimit{{Pagesize: "2MB", Limit: 1}}})
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "linux.resources.hugepageLimits") {
		t.Errorf("hugetlb without the controller: %v", err)
	}
}

func TestIOMaxLines(t *testing.T) {
	r := &config.Resources{
		BlkioThrottleReadBps:   []config.ThrottleDevice{{Major: 8, Minor: 0, Rate: 1}},
		BlkioThrottleWriteBps:  []config.ThrottleDevice{{Major: 8, Minor: 16, Rate: 2}, {Major: 8, Minor: 0, Rate: 3}},
		BlkioThrottleReadIOPS:  []config.ThrottleDevice{{Major: 8, Minor: 0, Rate: 4}},
		BlkioThrottleWriteIOPS: []config.ThrottleDevice{{Major: 8, Minor: 0, Rate: 5}},
	}
	got := strings.Join(ioMaxLines(r), "|")
	if want := "8:0 rbps=1 wbps=3 riops=4 wiops=5|8:16 wbps=2"; got != want {
		t.Errorf("ioMaxLines = %q, want %q", got, want)
	}
}

func TestBlkioToIOWeight(t *testing.T) {
	for w, want := range map[uint16]uint64{10: 1, 500: 4950, 1000: 10000, 100: 910} {
		if got := blkioToIOWeight(w); got != want {
			t.Errorf("blkioToIOWeight(%d) = %d, want %d", w, got, want)
		}
	}
}
