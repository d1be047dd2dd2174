package migrate

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
	"github.com/lkc-containers/lkc/internal/checkpoint"
	"github.com/lkc-containers/lkc/internal/effective"
)

// Facts are what a host tells its peer so that either side can refuse a
// migration the target could not restore.
type Facts struct {
	Kernel     string   `json:"kernel"` // uname release
	Arch       string   `json:"arch"`
	CPUFlags   []string `json:"cpuFlags"` // the instruction-set flags that matter (see isaFlag)
	CRIU       [3]int   `json:"criu"`     // zero when the host has no CRIU 4
	CRIUError  string   `json:"criuError,omitempty"`
	CgroupMode string   `json:"cgroupMode"` // "v1" or "v2"
	SoftDirty  bool     `json:"softDirty"`  // CRIU can track dirty memory: pre-copy works
	LazyPages  bool     `json:"lazyPages"`  // userfaultfd: post-copy works
	// LazyServe says CRIU's page server can serve lazy pages from here,
	// what a post-copy source needs beyond userfaultfd.
	LazyServe      bool   `json:"lazyServe"`
	LazyServeError string `json:"lazyServeError,omitempty"`
}

// HostFacts gathers this host's facts; procRoot and cgroupRoot are "/proc"
// and "/sys/fs/cgroup" outside tests.
func HostFacts(criuPath, procRoot, cgroupRoot string) (*Facts, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil, fmt.Errorf("uname: %w", err)
	}
	f := &Facts{Kernel: unix.ByteSliceToString(u.Release[:]), Arch: runtime.GOARCH}
	cpu, err := os.Open(filepath.Join(procRoot, "cpuinfo"))
	if err != nil {
		return nil, fmt.Errorf("reading CPU flags: %w", err)
	}
	defer cpu.Close()
	if f.CPUFlags, err = parseCPUFlags(cpu); err != nil {
		return nil, err
	}
	f.CgroupMode = "v1"
	if v2, _ := cgroupfs.IsV2(cgroupRoot); v2 {
		f.CgroupMode = "v2"
	}
	if err := f.criuFacts(criuPath); err != nil {
		f.CRIUError = err.Error()
	}
	return f, nil
}

func (f *Facts) criuFacts(path string) error {
	cr, err := checkpoint.Find(path)
	if err != nil {
		return err
	}
	if f.CRIU, err = cr.Version(); err != nil {
		return err
	}
	feat, err := cr.Features(checkpoint.Features{MemTrack: true, LazyPages: true})
	if err != nil {
		return err
	}
	f.SoftDirty, f.LazyPages = feat.MemTrack, feat.LazyPages
	if err := checkpoint.CanServeLazyPages(); err != nil {
		f.LazyServeError = err.Error()
	} else {
		f.LazyServe = f.LazyPages
	}
	return nil
}

// parseCPUFlags returns the instruction-set flags of the first CPU in a
// /proc/cpuinfo. A process restored on a CPU without an instruction set it
// chose at startup (AVX-512, say) dies of SIGILL later, so these must be a
// subset on the target.
func parseCPUFlags(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(k) != "flags" {
			continue
		}
		var out []string
		for _, fl := range strings.Fields(v) {
			if isaFlag(fl) {
				out = append(out, fl)
			}
		}
		return out, nil
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading CPU flags: %w", err)
	}
	return nil, fmt.Errorf("reading CPU flags: no flags line in cpuinfo")
}

// isaFlag reports whether f is a CPU flag a migrated process may use. A
// switch, not a map: a map literal is built in every lkc process's start.
func isaFlag(f string) bool {
	switch f {
	case "fpu", "mmx", "sse", "sse2", "pni", "ssse3", "sse4_1",
		"sse4_2", "avx", "avx2", "fma", "f16c", "aes", "pclmulqdq",
		"popcnt", "bmi1", "bmi2", "adx", "abm", "movbe", "rdrand",
		"rdseed", "sha_ni", "xsave", "xsaveopt", "xsavec", "xsaves",
		"erms", "fsrm", "vaes", "vpclmulqdq", "gfni", "clflushopt",
		"clwb", "pku", "cx16", "lahf_lm",
		"asimd", "sve", "sve2", "atomics", "crc32", "sha2", "sha3":
		return true
	}
	return strings.HasPrefix(f, "avx512") || strings.HasPrefix(f, "amx") || strings.HasPrefix(f, "avx_vnni")
}

// kernelVersion parses "6.18.44-foo" into {6, 18}.
func kernelVersion(release string) [2]int {
	var v [2]int
	parts := strings.SplitN(release, ".", 3)
	for i := 0; i < 2 && i < len(parts); i++ {
		n := strings.IndexFunc(parts[i], func(r rune) bool { return r < '0' || r > '9' })
		if n < 0 {
			n = len(parts[i])
		}
		v[i], _ = strconv.Atoi(parts[i][:n])
	}
	return v
}

func less(a, b []int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// Compatible says why target cannot restore what source dumps, or nil. The
// target must run the same architecture and cgroup mode, a kernel and a
// CRIU at least as new, and offer every instruction-set flag of the source.
func Compatible(source, target *Facts) error {
	if target.CRIU == [3]int{} {
		return fmt.Errorf("incompatible target: no CRIU 4 there: %s", target.CRIUError)
	}
	if source.Arch != target.Arch {
		return fmt.Errorf("incompatible target: architecture %s, the source is %s", target.Arch, source.Arch)
	}
	if source.CgroupMode != target.CgroupMode {
		return fmt.Errorf("incompatible target: cgroup %s, the source uses cgroup %s", target.CgroupMode, source.CgroupMode)
	}
	sk, tk := kernelVersion(source.Kernel), kernelVersion(target.Kernel)
	if less(tk[:], sk[:]) {
		return fmt.Errorf("incompatible target: kernel %s is older than the source's %s", target.Kernel, source.Kernel)
	}
	if less(target.CRIU[:], source.CRIU[:]) {
		return fmt.Errorf("incompatible target: CRIU %d.%d.%d is older than the source's %d.%d.%d",
			target.CRIU[0], target.CRIU[1], target.CRIU[2], source.CRIU[0], source.CRIU[1], source.CRIU[2])
	}
	have := map[string]bool{}
	for _, f := range target.CPUFlags {
		have[f] = true
	}
	var missing []string
	for _, f := range source.CPUFlags {
		if !have[f] {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("incompatible target: its CPU lacks %s", strings.Join(missing, " "))
	}
	return nil
}

// maxOfferBytes bounds each size an offer announces (1 EiB): with both
// at most that, their sum and its margin cannot overflow.
const maxOfferBytes = 1 << 60

// checkSpace refuses a target whose dir cannot hold rootfs and memory
// bytes and a tenth more.
func checkSpace(dir string, rootfs, memory int64) error {
	for _, n := range []int64{rootfs, memory} {
		if n < 0 || n > maxOfferBytes {
			return fmt.Errorf("%w: the offer announces %d bytes to store", ErrProtocol, n)
		}
	}
	space, err := freeSpace(dir)
	if err != nil {
		return err
	}
	need := uint64(rootfs) + uint64(memory)
	if want := need + need/10; space.Free < want {
		return fmt.Errorf("incompatible target: %s has %s, the container needs %d MiB", dir, space, want>>20)
	}
	return nil
}

// checkBatchSpace refuses, in a probe, a target whose dir cannot hold
// the batch bytes of a whole evacuation and a tenth more.
func checkBatchSpace(dir string, batch int64) error {
	if batch > maxOfferBytes {
		return fmt.Errorf("%w: the probe announces %d bytes to store", ErrProtocol, batch)
	}
	space, err := freeSpace(dir)
	if err != nil {
		return err
	}
	if want := uint64(batch) + uint64(batch)/10; space.Free < want {
		return fmt.Errorf("incompatible target: %s has %s, the evacuation needs %d MiB", dir, space, want>>20)
	}
	return nil
}

// freeSpace is the room this receiver has to write into dir: its
// filesystem's free space for an unprivileged writer and, on a tmpfs or
// ramfs, whose files take memory, no more than the memory this process
// may still take (the host's and its cgroup's).
func freeSpace(dir string) (*effective.Space, error) {
	return effective.DirSpace("/", dir, os.Getpid())
}

// checkInterfaces refuses a target without the bridges the container's
// veth peers must join there.
func checkInterfaces(veths []Veth) error {
	for _, v := range veths {
		if v.Bridge == "" {
			continue
		}
		if _, err := net.InterfaceByName(v.Bridge); err != nil {
			return fmt.Errorf("incompatible target: no bridge %s for the container's %s: %w", v.Bridge, v.Inside, err)
		}
	}
	return nil
}
