package spec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/config"
)

func u16(v uint16) *uint16  { return &v }
func u32(v uint32) *uint32  { return &v }
func u64p(v uint64) *uint64 { return &v }
func i64p(v int64) *int64   { return &v }
func boolp(v bool) *bool    { return &v }

var (
	hostV1 = cgroupHost{pagesizes: map[string]bool{"2MB": true}, cpus: map[int]bool{0: true, 1: true}, mems: map[int]bool{0: true}}
	hostV2 = cgroupHost{unified: true, pagesizes: map[string]bool{"2MB": true, "1GB": true}, cpus: map[int]bool{0: true, 1: true}}
)

// TestConvertResourcesRefuses: every bad value fails with ErrInvalid and a
// one-line error naming the key.
func TestConvertResourcesRefuses(t *testing.T) {
	cases := []struct {
		name string
		h    cgroupHost
		r    specs.LinuxResources
		want string
	}{
		{"negative kernel", hostV1, specs.LinuxResources{Memory: &specs.LinuxMemory{Kernel: i64p(-2)}}, "memory.kernel -2 is negative"},
		{"negative kernelTCP", hostV1, specs.LinuxResources{Memory: &specs.LinuxMemory{KernelTCP: i64p(-5)}}, "memory.kernelTCP -5 is negative"},
		{"swappiness", hostV1, specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: u64p(101)}}, "memory.swappiness 101 is outside 0-100"},
		{"idle", hostV1, specs.LinuxResources{CPU: &specs.LinuxCPU{Idle: i64p(2)}}, "cpu.idle 2 is neither 0 nor 1"},
		{"rt runtime", hostV1, specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: i64p(-3)}}, "cpu.realtimeRuntime -3 is negative"},
		{"rt on v2", hostV2, specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimePeriod: u64p(1000000)}}, "cgroup v2 has no realtime"},
		{"cpus beyond host", hostV1, specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "1-3"}}, `cpu.cpus "1-3" names \[2 3\], which the host does not have online`},
		{"cpus syntax", hostV1, specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0-a"}}, "linux.resources.cpu.cpus: \"0-a\" is not a list"},
		{"mems beyond host", hostV1, specs.LinuxResources{CPU: &specs.LinuxCPU{Mems: "1"}}, `cpu.mems "1" names \[1\]`},
		{"weight low", hostV1, specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: u16(9)}}, "blockIO.weight 9 is outside 10-1000"},
		{"leaf weight high", hostV1, specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{LeafWeight: u16(1001)}}, "blockIO.leafWeight 1001 is outside 10-1000"},
		{"device weight", hostV1, specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{WeightDevice: []specs.LinuxWeightDevice{{Weight: u16(5)}}}}, `blockIO.weightDevice\[0\].weight 5 is outside`},
		{"negative device", hostV1, specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: -1}, Rate: 5}}}}, `blockIO.throttleWriteIOPSDevice\[0\]: device -1:0 is negative`},
		{"hugepage size", hostV1, specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "1GB", Limit: 1 << 30}}}, `hugepageLimits\[0\]: the host has no "1GB" huge pages \(it has 2MB\)`},
		{"interface name", hostV1, specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: ""}}}}, `network.priorities\[0\]: interface name "" is empty`},
		{"rdma device", hostV2, specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"a b": {}}}, `rdma: device name "a b"`},
		{"unified on v1", hostV1, specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}, `unified\["memory.high"\]: the host does not run cgroup v2`},
		{"unified slash", hostV2, specs.LinuxResources{Unified: map[string]string{"../memory.max": "1"}}, `unified\["../memory.max"\]: not a cgroup file name`},
		{"unified no dot", hostV2, specs.LinuxResources{Unified: map[string]string{"memory": "1"}}, `unified\["memory"\]: not a cgroup file name`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := convertResources(&c.r, &config.Resources{}, c.h)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("convertResources = %v, want ErrInvalid", err)
			}
			if !regexp.MustCompile(c.want).MatchString(err.Error()) || !strings.Contains(err.Error(), "linux.resources.") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q does not match %q on one line", err, c.want)
			}
		})
	}
}

func TestConvertResourcesAccepts(t *testing.T) {
	r := specs.LinuxResources{
		Memory: &specs.LinuxMemory{Kernel: i64p(-1), KernelTCP: i64p(1 << 20), Swappiness: u64p(0), DisableOOMKiller: boolp(true),
			UseHierarchy: boolp(true), CheckBeforeUpdate: boolp(true)},
		CPU: &specs.LinuxCPU{Burst: u64p(1000), Idle: i64p(1), RealtimeRuntime: i64p(950000), RealtimePeriod: u64p(1000000), Cpus: "0-1", Mems: "0"},
		BlockIO: &specs.LinuxBlockIO{Weight: u16(10), LeafWeight: u16(1000),
			WeightDevice:          []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: u16(500)}},
			ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, Rate: 1 << 20}}},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}},
		Network:        &specs.LinuxNetwork{ClassID: u32(0x100001), Priorities: []specs.LinuxInterfacePriority{{Name: "eth0", Priority: 5}}},
		Rdma:           map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: u32(3)}},
	}
	var res config.Resources
	if err := convertResources(&r, &res, hostV1); err != nil {
		t.Fatal(err)
	}
	want := config.Resources{
		KernelMemory: i64p(-1), KernelMemoryTCP: i64p(1 << 20), MemorySwappiness: u64p(0), OOMKillDisable: true,
		MemoryUseHierarchy: boolp(true), MemoryCheckBeforeUpdate: true,
		CPUBurst: u64p(1000), CPUIdle: i64p(1), CPURealtimeRuntime: i64p(950000), CPURealtimePeriod: u64p(1000000), CPUs: "0-1", Mems: "0",
		BlkioWeight: u16(10), BlkioLeafWeight: u16(1000),
		BlkioWeightDevices:   []config.WeightDevice{{Major: 8, Minor: 0, Weight: u16(500)}},
		BlkioThrottleReadBps: []config.ThrottleDevice{{Major: 8, Minor: 16, Rate: 1 << 20}},
		HugepageLimits:       []config.HugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}},
		NetClassID:           u32(0x100001), NetPriorities: []config.NetPriority{{Name: "eth0", Priority: 5}},
		Rdma: map[string]config.RdmaLimit{"mlx5_0": {HcaHandles: u32(3)}},
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("converted\n%+v\nwant\n%+v", res, want)
	}
	r = specs.LinuxResources{Unified: map[string]string{"memory.high": "max", "cgroup.freeze": "0"}}
	if err := convertResources(&r, &res, hostV2); err != nil || len(res.Unified) != 2 {
		t.Errorf("unified on v2: %v, %v", err, res.Unified)
	}
}

func TestProbeCgroupHost(t *testing.T) {
	old := sysRoot
	sysRoot = t.TempDir()
	defer func() { sysRoot = old }()
	for _, d := range []string{"kernel/mm/hugepages/hugepages-2048kB", "kernel/mm/hugepages/hugepages-1048576kB", "kernel/mm/hugepages/hugepages-64kB", "devices/system/cpu", "fs/cgroup"} {
		if err := os.MkdirAll(filepath.Join(sysRoot, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(sysRoot, "devices/system/cpu/online"), []byte("0-2,5\n"), 0o644)
	h := probeCgroupHost()
	if h.unified || !reflect.DeepEqual(h.pagesizes, map[string]bool{"2MB": true, "1GB": true, "64KB": true}) {
		t.Errorf("probe: %+v", h)
	}
	if !reflect.DeepEqual(h.cpus, map[int]bool{0: true, 1: true, 2: true, 5: true}) || h.mems != nil {
		t.Errorf("cpus %v, mems %v (an unreadable list is not checked)", h.cpus, h.mems)
	}
	os.WriteFile(filepath.Join(sysRoot, "fs/cgroup/cgroup.controllers"), nil, 0o644)
	if !probeCgroupHost().unified {
		t.Error("cgroup.controllers at the root: want unified")
	}
}
