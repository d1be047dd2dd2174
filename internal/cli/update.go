package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/container"
	"github.com/lkc-containers/lkc/internal/network"
	"github.com/lkc-containers/lkc/internal/spec"
)

// updateFlags are runc's update flags that set one limit each.
var updateFlags = []string{"memory", "memory-reservation", "memory-swap", "pids-limit",
	"cpu-share", "cpu-shares", "cpu-quota", "cpu-period", "cpu-rt-period", "cpu-rt-runtime",
	"cpuset-cpus", "cpuset-mems", "blkio-weight", "kernel-memory", "kernel-memory-tcp"}

// cmdUpdate changes a container's limits live, with runc's flags. As in
// runc, memory values take k, m, g, t or p suffixes (powers of 1024), -1
// means unlimited and 0 leaves a limit as it is; flags given with
// --resources override its values. The flags and the file are checked as
// config.json's resources are.
func cmdUpdate(g *globals, args []string) error {
	fs := newFlags("update")
	resources := fs.String("resources", "", "file with linux.resources JSON, - for stdin")
	fs.StringVar(resources, "r", "", "file with linux.resources JSON, - for stdin")
	for _, name := range updateFlags {
		fs.String(name, "", name)
	}
	netRate := fs.String("net-rate", "", "egress=RATE,ingress=RATE (RATE or none) or none: change the CNI bandwidth limit; a direction left out keeps its limit (docs/network.md)")
	rest, err := parse(fs, args, exactly(1), "lkc update [flags] <container-id>")
	if err != nil {
		return err
	}
	oci := &specs.LinuxResources{}
	if *resources != "" {
		if oci, err = readResources(*resources); err != nil {
			return err
		}
	}
	var ferr error
	cgroupFlags := *resources != ""
	fs.Visit(func(f *flag.Flag) {
		if ferr == nil && slices.Contains(updateFlags, f.Name) {
			ferr, cgroupFlags = setUpdateFlag(oci, f.Name, f.Value.String()), true
		}
	})
	if ferr != nil {
		return ferr
	}
	r, err := convertUpdate(oci, *resources)
	if err != nil {
		return err
	}
	netRateSet := false
	fs.Visit(func(f *flag.Flag) { netRateSet = netRateSet || f.Name == "net-rate" })
	if !netRateSet {
		return container.Update(g.root, rest[0], r)
	}
	rate, err := network.ParseRateChange(*netRate)
	if err != nil {
		return fmt.Errorf("--net-rate: %w", err)
	}
	if cgroupFlags {
		if err := container.Update(g.root, rest[0], r); err != nil {
			return err
		}
	}
	return container.UpdateNetRate(g.root, rest[0], rate)
}

func readResources(name string) (*specs.LinuxResources, error) {
	var in io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("--resources: %w", err)
		}
		defer f.Close()
		in = f
	}
	oci, err := spec.ParseResources(in)
	if err != nil {
		return nil, fmt.Errorf("--resources %s: %w", name, err)
	}
	return oci, nil
}

// convertUpdate checks and converts the resources of an update, whose
// zeros mean "unchanged"; file names the --resources file, if any, for
// errors.
func convertUpdate(oci *specs.LinuxResources, file string) (*config.Resources, error) {
	unsetZeros(oci)
	r, err := spec.ConvertResources(oci)
	switch {
	case err == nil:
		return r, nil
	case file != "":
		return nil, fmt.Errorf("--resources %s: %w", file, err)
	}
	// Flags alone: the error is theirs, not config.json's.
	msg := strings.TrimPrefix(err.Error(), spec.ErrInvalid.Error()+": ")
	return nil, fmt.Errorf("%w: %s", errBadFlags, msg)
}

// errBadFlags marks update flags refused as config.json's resources would be.
var errBadFlags = errors.New("invalid update flags")

// unsetZeros reads 0 as "leave unchanged", as runc update does: Docker
// (docker update) sends every limit it knows, 0 for those not being set.
func unsetZeros(r *specs.LinuxResources) {
	if m := r.Memory; m != nil {
		m.Limit, m.Reservation, m.Swap = nonZero(m.Limit), nonZero(m.Reservation), nonZero(m.Swap)
		m.Kernel, m.KernelTCP = nonZero(m.Kernel), nonZero(m.KernelTCP)
	}
	if c := r.CPU; c != nil {
		c.Shares, c.Quota, c.Period = nonZero(c.Shares), nonZero(c.Quota), nonZero(c.Period)
		c.RealtimeRuntime, c.RealtimePeriod = nonZero(c.RealtimeRuntime), nonZero(c.RealtimePeriod)
	}
	if b := r.BlockIO; b != nil {
		b.Weight = nonZero(b.Weight)
	}
	if r.Pids != nil && r.Pids.Limit == 0 {
		r.Pids = nil
	}
}

func nonZero[T int64 | uint64 | uint16](p *T) *T {
	if p != nil && *p == 0 {
		return nil
	}
	return p
}

// setUpdateFlag stores the value of update flag name in r.
func setUpdateFlag(r *specs.LinuxResources, name, v string) error {
	var err error
	if r.Memory == nil {
		r.Memory = &specs.LinuxMemory{}
	}
	if r.CPU == nil {
		r.CPU = &specs.LinuxCPU{}
	}
	switch name {
	case "memory":
		r.Memory.Limit, err = memoryFlag(v)
	case "memory-reservation":
		r.Memory.Reservation, err = memoryFlag(v)
	case "memory-swap":
		r.Memory.Swap, err = memoryFlag(v)
	case "kernel-memory":
		r.Memory.Kernel, err = memoryFlag(v)
	case "kernel-memory-tcp":
		r.Memory.KernelTCP, err = memoryFlag(v)
	case "pids-limit":
		var n *int64
		if n, err = intFlag[int64](v, 64); err == nil {
			r.Pids = &specs.LinuxPids{Limit: *n}
		}
	case "cpu-quota":
		r.CPU.Quota, err = intFlag[int64](v, 64)
	case "cpu-rt-runtime":
		r.CPU.RealtimeRuntime, err = intFlag[int64](v, 64)
	case "cpu-share", "cpu-shares":
		r.CPU.Shares, err = uintFlag[uint64](v, 64)
	case "cpu-period":
		r.CPU.Period, err = uintFlag[uint64](v, 64)
	case "cpu-rt-period":
		r.CPU.RealtimePeriod, err = uintFlag[uint64](v, 64)
	case "cpuset-cpus":
		r.CPU.Cpus = v
	case "cpuset-mems":
		r.CPU.Mems = v
	case "blkio-weight":
		if r.BlockIO == nil {
			r.BlockIO = &specs.LinuxBlockIO{}
		}
		r.BlockIO.Weight, err = uintFlag[uint16](v, 16)
	}
	if err != nil {
		return fmt.Errorf("--%s %q: %w", name, v, err)
	}
	return nil
}

// setFlag stores the value of a limit flag that `lkc group` shares with
// update in r: without update's "0 is unchanged", which groups refuse.
func setFlag(r *config.Resources, name, v string) error {
	var err error
	switch name {
	case "memory":
		r.MemoryLimit, err = memoryFlag(v)
	case "memory-reservation":
		r.MemoryReservation, err = memoryFlag(v)
	case "memory-swap":
		r.MemorySwap, err = memoryFlag(v)
	case "pids-limit":
		r.PidsLimit, err = intFlag[int64](v, 64)
	case "cpu-quota":
		r.CPUQuota, err = intFlag[int64](v, 64)
	case "cpu-share", "cpu-shares":
		r.CPUShares, err = uintFlag[uint64](v, 64)
	case "cpu-period":
		r.CPUPeriod, err = uintFlag[uint64](v, 64)
	case "cpuset-cpus":
		r.CPUs = v
	case "cpuset-mems":
		r.Mems = v
	}
	if err != nil {
		return fmt.Errorf("--%s %q: %w", name, v, err)
	}
	return nil
}

func memoryFlag(v string) (*int64, error) {
	n, err := ParseMemory(v)
	return &n, err
}

func intFlag[T int64](v string, bits int) (*T, error) {
	n, err := strconv.ParseInt(v, 10, bits)
	t := T(n)
	return &t, err
}

func uintFlag[T uint64 | uint16](v string, bits int) (*T, error) {
	n, err := strconv.ParseUint(v, 10, bits)
	t := T(n)
	return &t, err
}

// memorySize is compiled on first use: compiling it in every lkc process,
// `lkc init` included, cost 0.05 ms of each start.
var memorySize = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(\d+(?:\.\d+)?) ?([kmgtp])?(?:i?b)?$`)
})

// ParseMemory reads a memory size as runc does (docker's RAMInBytes):
// bytes, or a number with k, m, g, t or p (optionally followed by b or ib,
// any case) meaning powers of 1024; "-1" is unlimited.
func ParseMemory(v string) (int64, error) {
	if v == "-1" {
		return -1, nil
	}
	m := memorySize().FindStringSubmatch(strings.ToLower(strings.TrimSpace(v)))
	if m == nil {
		return 0, fmt.Errorf("not a memory size (use bytes or a k, m, g suffix)")
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, err
	}
	if m[2] != "" {
		n *= float64(int64(1) << (10 * (strings.Index("kmgtp", m[2]) + 1)))
	}
	if n >= 1<<63 {
		return 0, fmt.Errorf("too large")
	}
	return int64(n), nil
}
