package procfs

import (
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"
)

var hugeLines = regexp.MustCompile(`(?m)^(HugePages_(Total|Free|Rsvd|Surp)|Hugepagesize|Hugetlb):.*$`)

// hugeHost gives the fixture's host a pool of 2 MiB pages: 100 pages, 50
// free, 48 of them reserved, 3 surplus, and one 1 GiB page besides
// (Hugetlb counts every size's pool).
func (f *fixture) hugeHost() {
	f.t.Helper()
	values := hostHuge
	host, _ := os.ReadFile(f.root + "/proc/meminfo")
	if n := len(hugeLines.FindAllString(string(host), -1)); n != len(values) {
		f.t.Skipf("this host's meminfo has %d of the %d huge page fields", n, len(values))
	}
	f.write("proc/meminfo", hugeLines.ReplaceAllStringFunc(string(host), func(line string) string {
		m := hugeLines.FindStringSubmatch(line)
		name, num := meminfoWidths(m[1])
		if m[1] == "Hugepagesize" || m[1] == "Hugetlb" {
			return fmt.Sprintf("%-*s%*d kB", name, m[1]+":", num, values[m[1]])
		}
		return fmt.Sprintf("%-*s%*d", name, m[1]+":", num, values[m[1]])
	}))
}

// hostHuge is the fixture host's huge page fields (hugeHost), as
// meminfoValues returns them (Hugetlb in kB).
var hostHuge = map[string]uint64{"HugePages_Total": 100, "HugePages_Free": 50, "HugePages_Rsvd": 48,
	"HugePages_Surp": 3, "Hugepagesize": 2048, "Hugetlb": 100*2048 + 1<<20}

func (f *fixture) meminfo() map[string]uint64 {
	f.t.Helper()
	host, _ := os.ReadFile(f.root + "/proc/meminfo")
	return meminfoValues(f.t, string(host), f.render("proc/meminfo"))
}

// hugeV1 adds a v1 hugetlb hierarchy to the v1 fixture: the root
// unlimited, the pod limited to limit bytes, the container unlimited and
// using used bytes.
func (f *fixture) hugeV1(limit, used string) {
	cg := "sys/fs/cgroup/hugetlb/"
	for _, d := range []string{"", "pod/", "pod/ctr/"} {
		f.write(cg+d+"cgroup.procs", "")
		f.write(cg+d+"hugetlb.2MB.limit_in_bytes", "9223372036852678656\n")
		f.write(cg+d+"hugetlb.1GB.limit_in_bytes", "0\n")
	}
	f.write(cg+"pod/hugetlb.2MB.limit_in_bytes", limit+"\n")
	f.write(cg+"pod/ctr/hugetlb.2MB.usage_in_bytes", used+"\n")
	f.c.Cgroups["hugetlb"] = f.root + "/" + cg + "pod/ctr"
}

// TestMeminfoHugetlbV1: the pod's 8 MiB (4 pages) with 2 MiB used leaves
// 3 pages; the host has only 2 free and unreserved, so 1 of the 3 shows
// reserved.
func TestMeminfoHugetlbV1(t *testing.T) {
	f := newFixture(t)
	f.v1()
	f.hugeHost()
	f.hugeV1("8388608", "2097152")
	checkValues(t, f.meminfo(), map[string]uint64{"HugePages_Total": 4, "HugePages_Free": 3, "HugePages_Rsvd": 1,
		"HugePages_Surp": 3, "Hugepagesize": 2048, "Hugetlb": 4*2048 + 1<<20})
}

// TestMeminfoHugetlbV2Zero is a Kubernetes pod that asked for no huge
// pages: its limit is 0, so it has none, though the host has a pool.
func TestMeminfoHugetlbV2Zero(t *testing.T) {
	f := newFixture(t)
	f.v2()
	f.hugeHost()
	cg := "sys/fs/cgroup/"
	for _, d := range []string{"", "ctr/"} {
		f.write(cg+d+"cgroup.controllers", "cpuset cpu io memory hugetlb pids\n")
	}
	f.write(cg+"ctr/hugetlb.2MB.max", "0\n")
	f.write(cg+"ctr/hugetlb.2MB.current", "0\n")
	checkValues(t, f.meminfo(), map[string]uint64{"HugePages_Total": 0, "HugePages_Free": 0, "HugePages_Rsvd": 0,
		"HugePages_Surp": 0, "Hugepagesize": 2048, "Hugetlb": 1 << 20})
}

// TestMeminfoHugetlbUnlimited: no limit at any level, or no hugetlb
// controller at all, shows the host's pool.
func TestMeminfoHugetlbUnlimited(t *testing.T) {
	f := newFixture(t)
	f.v1()
	f.hugeHost()
	checkValues(t, f.meminfo(), hostHuge)

	f = newFixture(t)
	f.v1()
	f.hugeHost()
	f.hugeV1("9223372036852678656", "2097152")
	checkValues(t, f.meminfo(), hostHuge)

	f = newFixture(t)
	f.v2()
	f.hugeHost()
	f.write("sys/fs/cgroup/cgroup.controllers", "memory hugetlb\n")
	f.write("sys/fs/cgroup/ctr/cgroup.controllers", "cpuset cpu io memory hugetlb pids\n")
	f.write("sys/fs/cgroup/ctr/hugetlb.2MB.max", "max\n")
	f.write("sys/fs/cgroup/ctr/hugetlb.2MB.current", "0\n")
	checkValues(t, f.meminfo(), hostHuge)
}

// TestMeminfoHugetlbHybrid: on a hybrid host whose unified half holds
// hugetlb, the container's paths name no hugetlb cgroup; its init's
// unified cgroup is the one the kernel charges, and its parent's limit
// (3 pages) counts.
func TestMeminfoHugetlbHybrid(t *testing.T) {
	f := newFixture(t)
	f.v1()
	f.hugeHost()
	f.write("proc/self/mountinfo", "30 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"+
		"41 25 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n")
	f.write("proc/101/cgroup", "4:memory:/pod/ctr\n0::/outer/inner\n")
	u := "sys/fs/cgroup/unified/"
	f.write(u+"cgroup.controllers", "hugetlb\n")
	f.write(u+"cgroup.procs", "")
	for _, d := range []string{"outer/", "outer/inner/"} {
		f.write(u+d+"cgroup.controllers", "hugetlb\n")
		f.write(u+d+"cgroup.procs", "")
		f.write(u+d+"hugetlb.2MB.max", "max\n")
	}
	f.write(u+"outer/hugetlb.2MB.max", "6291456\n")
	f.write(u+"outer/inner/hugetlb.2MB.current", "0\n")
	checkValues(t, f.meminfo(), map[string]uint64{"HugePages_Total": 3, "HugePages_Free": 3, "HugePages_Rsvd": 1})
}

// TestMeminfoHugetlbKept: the limit is kept for cacheFor (an update shows
// within it), the usage is read on every render.
func TestMeminfoHugetlbKept(t *testing.T) {
	f := newFixture(t)
	f.v1()
	f.hugeHost()
	f.hugeV1("8388608", "0")
	checkValues(t, f.meminfo(), map[string]uint64{"HugePages_Total": 4, "HugePages_Free": 4})
	f.write("sys/fs/cgroup/hugetlb/pod/hugetlb.2MB.limit_in_bytes", "4194304\n")
	f.write("sys/fs/cgroup/hugetlb/pod/ctr/hugetlb.2MB.usage_in_bytes", "2097152\n")
	checkValues(t, f.meminfo(), map[string]uint64{"HugePages_Total": 4, "HugePages_Free": 3})
	f.pass(2 * time.Second)
	checkValues(t, f.meminfo(), map[string]uint64{"HugePages_Total": 2, "HugePages_Free": 1})
}
