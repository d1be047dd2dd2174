package procfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lkc-containers/lkc/internal/effective"
)

// hugeView is a container's hugetlb cgroup and the tightest limit on the
// host's default huge page size over it and its ancestors, as hugeLimit
// last found them, and when.
type hugeView struct {
	mu   sync.Mutex
	last hugeAnswer
	at   time.Time
}

// hugeAnswer is one hugeLimit answer.
type hugeAnswer struct {
	size  uint64 // the page size it is for
	dir   string // "": no hugetlb cgroup
	v2    bool
	limit uint64 // bytes, when set
	set   bool
}

// hugePages sets meminfo's huge page fields (f, bytes or counts as
// parseMeminfo keeps them) to the part of the host's default-size pool
// that c's hugetlb limit lets it use. Without a limit, or without the
// hugetlb controller, they stay the host's.
//
// Total is the limit in pages, at most the host's; Free what the limit
// has left (limit − usage), at most the host's free pages; Rsvd is what
// Free holds beyond the pages the host has free and unreserved, so Free −
// Rsvd is what the container can still reserve (the host's when the
// limit leaves more); Surp at most Total; Hugetlb the host's less the
// pages of the default size Total leaves out (other sizes' pools stay).
func (h *Host) hugePages(c *Container, host, f map[string]uint64) error {
	size, total := host["Hugepagesize"], host["HugePages_Total"]
	if size == 0 {
		return nil
	}
	v, err := h.hugeLimit(c, size)
	if err != nil || !v.set {
		return err
	}
	usage := "hugetlb." + HugeName(size) + ".usage_in_bytes"
	if v.v2 {
		usage = "hugetlb." + HugeName(size) + ".current"
	}
	used, err := readUint(v.dir, usage)
	if err != nil {
		return err
	}
	hostFree := host["HugePages_Free"]
	unreserved := hostFree - min(host["HugePages_Rsvd"], hostFree)
	pages := min(total, v.limit/size)
	free := min(hostFree, (v.limit-min(used, v.limit))/size)
	f["HugePages_Total"] = pages
	f["HugePages_Free"] = free
	f["HugePages_Rsvd"] = free - min(free, unreserved)
	f["HugePages_Surp"] = min(host["HugePages_Surp"], pages)
	f["Hugetlb"] = host["Hugetlb"] - min((total-pages)*size, host["Hugetlb"])
	return nil
}

// hugeLimit finds c's hugetlb cgroup and its effective limit on size,
// kept for cacheFor: the walk to the root costs a read and a stat per
// level, and limits change only with an update (which then shows within
// cacheFor, as the CPU limits do). The cgroup is the one c's paths name
// for hugetlb; where they name none (a hybrid host, whose unified half
// holds hugetlb but gets no cgroup of lkc's: its processes stay in the
// unified cgroup they were started in), the one its init is in.
func (h *Host) hugeLimit(c *Container, size uint64) (hugeAnswer, error) {
	v := &c.huge
	v.mu.Lock()
	defer v.mu.Unlock()
	now := h.Now()
	if v.last.size == size && now.Sub(v.at) < cacheFor && !now.Before(v.at) {
		return v.last, nil
	}
	a := hugeAnswer{size: size}
	var err error
	if a.dir, a.v2, err = h.hugeDir(c); err != nil {
		return hugeAnswer{}, err
	}
	if a.dir != "" {
		if a.limit, a.set, err = walkHugeLimit(a.dir, a.v2, "hugetlb."+HugeName(size)+limitSuffix(a.v2)); err != nil {
			return hugeAnswer{}, err
		}
	}
	v.last, v.at = a, now
	return a, nil
}

// hugeDir is c's hugetlb cgroup (see hugeLimit), or "" when it has none.
func (h *Host) hugeDir(c *Container) (string, bool, error) {
	dir, v2, err := h.cgroupDir(c, "hugetlb")
	if !errors.Is(err, ErrNoController) {
		return dir, v2, err
	}
	if c.InitPid <= 0 {
		return "", false, nil
	}
	cg, err := effective.ForPid(h.Root, c.InitPid)
	if err != nil {
		return "", false, nil // init gone: the render fails on the container's own files
	}
	dir, v2, ok, err := cg.Dir("hugetlb")
	if err != nil || !ok {
		return "", false, err
	}
	return dir, v2, nil
}

func limitSuffix(v2 bool) string {
	if v2 {
		return ".max"
	}
	return ".limit_in_bytes"
}

// walkHugeLimit is the tightest of file's limits from dir up to its
// hierarchy's root; a level without the file (a v2 root) does not limit.
func walkHugeLimit(dir string, v2 bool, file string) (limit uint64, set bool, err error) {
	for d := dir; ; d = filepath.Dir(d) {
		s, err := readCgroupFile(d, file)
		switch {
		case errors.Is(err, ErrNoController):
		case err != nil:
			return 0, false, err
		default:
			v, ok, err := parseHugeLimit(strings.TrimSpace(s), v2)
			if err != nil {
				return 0, false, fmt.Errorf("%s/%s: %w", d, file, err)
			}
			if ok && (!set || v < limit) {
				limit, set = v, true
			}
		}
		parent := filepath.Dir(d)
		if parent == d {
			return limit, set, nil
		}
		if _, err := os.Stat(filepath.Join(parent, "cgroup.procs")); err != nil {
			return limit, set, nil
		}
	}
}

// parseHugeLimit reads one level's limit: v2 writes "max" for none, v1 a
// number near 2^63.
func parseHugeLimit(s string, v2 bool) (uint64, bool, error) {
	if v2 && s == "max" {
		return 0, false, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, err
	}
	l := v1Limit(v)
	return l.Value, l.Set, nil
}

// HugeName is the kernel's name for a huge page size in bytes, as
// hugetlb's files and the runtime spec's hugepageLimits spell it (2MB,
// 1GB, 64KB).
func HugeName(size uint64) string {
	switch {
	case size >= 1<<30:
		return strconv.FormatUint(size>>30, 10) + "GB"
	case size >= 1<<20:
		return strconv.FormatUint(size>>20, 10) + "MB"
	}
	return strconv.FormatUint(size>>10, 10) + "KB"
}
