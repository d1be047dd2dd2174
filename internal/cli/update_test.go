package cli

import (
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/spec"
)

// TestReadResources reads `update --resources` files: the limits they name
// converted as config.json's are, the others left nil so the update leaves
// them alone, device rules dropped (the device cgroup is fixed at create),
// and a malformed or refused object an ErrInvalid.
func TestReadResources(t *testing.T) {
	file := jsonFile(t, "r.json")
	oci, err := readResources(file(`{"memory":{"limit":134217728},"pids":{"limit":10},"cpu":{"cpus":"0"},"devices":[{"allow":false,"access":"rwm"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := convertUpdate(oci, "r.json")
	if err != nil {
		t.Fatal(err)
	}
	if *r.MemoryLimit != 128<<20 || *r.PidsLimit != 10 || r.CPUs != "0" {
		t.Errorf("resources %+v", r)
	}
	if r.MemorySwap != nil || r.CPUShares != nil || r.Devices != nil {
		t.Errorf("fields not in the JSON are set: %+v", r)
	}
	for _, bad := range []string{`{"memory":`, `{"memory":{"limit":10,"swap":5}}`, `{"cpu":{"quota":10}}`} {
		oci, err := readResources(file(bad))
		if err == nil {
			_, err = convertUpdate(oci, "r.json")
		}
		if !errors.Is(err, spec.ErrInvalid) {
			t.Errorf("readResources(%s) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestParseMemory(t *testing.T) {
	good := map[string]int64{
		"1024": 1024, "-1": -1, "32m": 32 << 20, "32M": 32 << 20, "128MB": 128 << 20,
		"1g": 1 << 30, "1GiB": 1 << 30, "64k": 64 << 10, "1.5g": 3 << 29, "10b": 10, "2 m": 2 << 20,
	}
	for in, want := range good {
		if got, err := ParseMemory(in); err != nil || got != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "m", "-2", "12x", "1..2m", "9999999p", "1e9"} {
		if got, err := ParseMemory(in); err == nil {
			t.Errorf("ParseMemory(%q) = %d, want an error", in, got)
		}
	}
}

func TestSetFlag(t *testing.T) {
	r := newResources(t, map[string]string{
		"memory": "64m", "memory-swap": "-1", "pids-limit": "20", "cpu-share": "512",
		"cpu-quota": "50000", "cpu-period": "100000", "cpuset-cpus": "0", "cpuset-mems": "0",
		"cpu-rt-period": "1000000", "cpu-rt-runtime": "-1",
	})
	if *r.MemoryLimit != 64<<20 || *r.MemorySwap != -1 || *r.PidsLimit != 20 || *r.CPUShares != 512 ||
		*r.CPUQuota != 50000 || *r.CPUPeriod != 100000 || r.CPUs != "0" || r.Mems != "0" ||
		*r.CPURealtimePeriod != 1000000 || *r.CPURealtimeRuntime != -1 {
		t.Errorf("resources %+v", r)
	}
	if r.MemoryReservation != nil {
		t.Error("an unset flag set a limit")
	}
	for name, v := range map[string]string{"cpu-shares": "x", "pids-limit": "1.5", "memory": "lots", "blkio-weight": "70000"} {
		if err := setUpdateFlag(&specs.LinuxResources{}, name, v); err == nil {
			t.Errorf("--%s %s accepted", name, v)
		}
	}
}

// TestSetFlagZeroIsUnchanged: as with runc, a flag given 0 leaves its
// limit alone (runc skips 0 when it writes), and -1 lifts the pids limit.
func TestSetFlagZeroIsUnchanged(t *testing.T) {
	r := newResources(t, map[string]string{"memory": "0", "pids-limit": "0", "cpu-quota": "0", "cpu-period": "0", "blkio-weight": "0"})
	if r.MemoryLimit != nil || r.PidsLimit != nil || r.CPUQuota != nil || r.CPUPeriod != nil || r.BlkioWeight != nil {
		t.Errorf("0 set a limit: %+v", r)
	}
	if r := newResources(t, map[string]string{"pids-limit": "-1"}); r.PidsLimit == nil || *r.PidsLimit != -1 {
		t.Errorf("--pids-limit -1: %v, want -1 (unlimited)", r.PidsLimit)
	}
}

func newResources(t *testing.T, flags map[string]string) *config.Resources {
	t.Helper()
	oci := &specs.LinuxResources{}
	for name, v := range flags {
		if err := setUpdateFlag(oci, name, v); err != nil {
			t.Fatal(err)
		}
	}
	r, err := convertUpdate(oci, "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestUpdateEmptyNetRate: `--net-rate=` is a bad value, refused before
// the container is looked at, not an update that changes nothing.
func TestUpdateEmptyNetRate(t *testing.T) {
	err := cmdUpdate(&globals{root: t.TempDir()}, []string{"--net-rate=", "nosuch"})
	if err == nil || !strings.Contains(err.Error(), `--net-rate: "": use egress=RATE,ingress=RATE`) {
		t.Errorf("update --net-rate= : %v", err)
	}
}
