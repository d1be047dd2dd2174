package migrate

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParseCPUFlags(t *testing.T) {
	in := "processor\t: 0\nflags\t\t: fpu vme sse sse2 avx2 avx512f amx_tile hypervisor\nbugs\t: x\nprocessor\t: 1\nflags\t\t: fpu\n"
	got, err := parseCPUFlags(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "fpu sse sse2 avx2 avx512f amx_tile" {
		t.Fatalf("flags %v", got)
	}
	if _, err := parseCPUFlags(strings.NewReader("processor: 0\n")); err == nil {
		t.Fatal("cpuinfo without flags accepted")
	}
}

func TestCompatible(t *testing.T) {
	base := func() *Facts {
		return &Facts{Kernel: "6.18.44-x", Arch: "amd64", CPUFlags: []string{"fpu", "avx2"}, CRIU: [3]int{4, 1, 1}, CgroupMode: "v1"}
	}
	for _, tc := range []struct {
		name   string
		mutate func(src, dst *Facts)
		want   string
	}{
		{"same", func(s, d *Facts) {}, ""},
		{"newer target", func(s, d *Facts) {
			d.Kernel = "6.19.0"
			d.CRIU = [3]int{4, 2, 0}
			d.CPUFlags = append(d.CPUFlags, "avx512f")
		}, ""},
		{"older kernel", func(s, d *Facts) { d.Kernel = "6.1.0-deb" }, "kernel 6.1.0-deb is older"},
		{"older criu", func(s, d *Facts) { d.CRIU = [3]int{4, 0, 9} }, "CRIU 4.0.9 is older"},
		{"no criu", func(s, d *Facts) { d.CRIU = [3]int{}; d.CRIUError = "no working CRIU 4" }, "no CRIU 4 there"},
		{"cgroup mode", func(s, d *Facts) { d.CgroupMode = "v2" }, "cgroup v2, the source uses cgroup v1"},
		{"cpu", func(s, d *Facts) { s.CPUFlags = append(s.CPUFlags, "avx512f", "sha_ni") }, "lacks avx512f sha_ni"},
		{"arch", func(s, d *Facts) { d.Arch = "arm64" }, "architecture arm64"},
	} {
		src, dst := base(), base()
		tc.mutate(src, dst)
		err := Compatible(src, dst)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestKernelVersion(t *testing.T) {
	for in, want := range map[string][2]int{"6.18.44-fc": {6, 18}, "5.10": {5, 10}, "6.1-rc3": {6, 1}} {
		if got := kernelVersion(in); got != want {
			t.Errorf("%s: %v", in, got)
		}
	}
}

// Sizes no storage holds, negative ones, and pairs whose sum overflows
// are refused, not waved through.
func TestCheckSpace(t *testing.T) {
	dir := t.TempDir()
	if err := checkSpace(dir, 1, 1); err != nil {
		t.Errorf("2 bytes: %v", err)
	}
	if err := checkSpace(dir, 1<<59, 0); err == nil || !strings.Contains(err.Error(), "MiB free") {
		t.Errorf("512 PiB: %v", err)
	}
	for _, n := range [][2]int64{{math.MaxInt64, 0}, {-1, 0}, {0, math.MinInt64}, {math.MaxInt64 / 2, math.MaxInt64 / 2}, {1 << 60, 1 << 60}} {
		if err := checkSpace(dir, n[0], n[1]); err == nil {
			t.Errorf("rootfs %d, memory %d bytes: accepted", n[0], n[1])
		}
	}
}

// A probe refuses an evacuation whose total does not fit, in the words
// migrate --all --dry-run prints, and a total out of range as a protocol
// error.
func TestCheckBatchSpace(t *testing.T) {
	dir := t.TempDir()
	if err := checkBatchSpace(dir, 1<<20); err != nil {
		t.Errorf("1 MiB: %v", err)
	}
	if err := checkBatchSpace(dir, 1<<59); err == nil || !strings.Contains(err.Error(), "the evacuation needs") {
		t.Errorf("512 PiB: %v", err)
	}
	if err := checkBatchSpace(dir, 1<<61); !errors.Is(err, ErrProtocol) {
		t.Errorf("2 EiB: %v", err)
	}
}

func TestVethExternal(t *testing.T) {
	if got := (Veth{Inside: "eth0", Peer: "vc1", Bridge: "br0"}).External(); got != "veth[eth0]:vc1@br0" {
		t.Error(got)
	}
	if got := (Veth{Inside: "eth0", Peer: "vc1"}).External(); got != "veth[eth0]:vc1" {
		t.Error(got)
	}
}

func TestPickMode(t *testing.T) {
	lazy := &Facts{LazyPages: true, LazyServe: true}
	noServe := &Facts{LazyPages: true, LazyServeError: "pipes too small"}
	dirty := &Facts{SoftDirty: true, LazyPages: true, LazyServe: true}
	for _, tt := range []struct {
		mode  string
		f     *Facts
		want  string
		error string
	}{
		{"", dirty, ModePrecopy, ""},
		{"", lazy, ModePostcopy, ""},
		{"", noServe, ModeStopcopy, ""},
		{"", &Facts{}, ModeStopcopy, ""},
		{ModePostcopy, lazy, ModePostcopy, ""},
		{ModePostcopy, noServe, "", "cannot post-copy: pipes too small"},
		{ModePostcopy, &Facts{}, "", "no userfaultfd"},
		{ModePrecopy, lazy, "", "soft-dirty"},
		{ModeStopcopy, &Facts{}, ModeStopcopy, ""},
		{"bogus", dirty, "", `unknown migration mode "bogus"`},
	} {
		got, err := pickMode(tt.mode, tt.f)
		if tt.error != "" {
			if err == nil || !strings.Contains(err.Error(), tt.error) {
				t.Errorf("pickMode(%q, %+v) = %q, %v; want an error with %q", tt.mode, tt.f, got, err, tt.error)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("pickMode(%q, %+v) = %q, %v; want %q", tt.mode, tt.f, got, err, tt.want)
		}
	}
}
