package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
	"github.com/lkc-containers/lkc/internal/effective"
	"github.com/lkc-containers/lkc/internal/procfs"
)

// TestProcViewHugetlb: a container whose hugetlb limit is one page of the
// host's default huge page size sees a pool of at most that page in its
// meminfo (all of it free: it uses none), not the host's. Where the host
// has no huge pages, the view still shows its pool of 0, so only the
// plumbing is checked (logged).
func TestProcViewHugetlb(t *testing.T) {
	own, err := effective.ForPid("/", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	dir, v2, ok, err := own.Dir("hugetlb")
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Skip("no hugetlb controller")
	}
	if v2 {
		if _, pure := cgroupfs.V2Dir(own); !pure {
			t.Skip("hugetlb is in the unified half of a hybrid host, where lkc makes containers no cgroup")
		}
		if sub, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control")); !strings.Contains(" "+string(sub), " hugetlb") {
			t.Skipf("hugetlb is not enabled below this test's cgroup %s", dir)
		}
	}
	meminfo, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	host := hugeFields(t, string(meminfo))
	size := host["Hugepagesize"] << 10
	if size == 0 {
		t.Skip("this host's meminfo has no Hugepagesize")
	}
	if host["HugePages_Total"] == 0 {
		t.Log("the host has no huge pages: its pool of 0 is all the view can show")
	}
	d := newDaemonEnv(t)
	b := d.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.proc": "virtual"}
		s.Linux.Resources.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: procfs.HugeName(size), Limit: size}}
	})
	id := d.id()
	d.mustLkc("run", "-d", "--bundle", b, id)
	t.Cleanup(func() { d.lkc("delete", "--force", id) })
	got := hugeFields(t, d.mustLkc("exec", id, "cat", "/proc/meminfo"))
	want := map[string]uint64{"HugePages_Total": min(host["HugePages_Total"], 1), "HugePages_Free": min(host["HugePages_Free"], 1),
		"Hugepagesize": host["Hugepagesize"]}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d in the container; want %d (host pool %v)", k, got[k], v, host)
		}
	}
}

// hugeFields are meminfo's huge page pool fields (Hugepagesize in kB).
func hugeFields(t *testing.T, meminfo string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, line := range strings.Split(meminfo, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (strings.HasPrefix(f[0], "HugePages_") || f[0] == "Hugepagesize:") {
			v, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatalf("meminfo line %q: %v", line, err)
			}
			out[strings.TrimSuffix(f[0], ":")] = v
		}
	}
	return out
}
