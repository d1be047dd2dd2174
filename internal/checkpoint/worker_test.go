package checkpoint

import (
	"os"
	"testing"
)

// A CRIU started ahead serves only a request that wants it started as it
// was: same dirs (by identity, not fd number), namespace, cgroups, stdio.
func TestWorkerFits(t *testing.T) {
	open := func(p string) *os.File {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	images, work, other := t.TempDir(), t.TempDir(), t.TempDir()
	started := &Request{Opts: &Opts{ImagesDirFd: int(open(images).Fd()), WorkDirFd: int(open(work).Fd())},
		NetNS: open("/proc/self/ns/net")}
	w := &Worker{fit: workerFit{netns: idOfFile(started.NetNS),
		images: idOf(started.Opts.ImagesDirFd), work: idOf(started.Opts.WorkDirFd)}}
	like := func(edit func(*Request)) *Request {
		r := &Request{Opts: &Opts{ImagesDirFd: int(open(images).Fd()), WorkDirFd: int(open(work).Fd())},
			NetNS: open("/proc/self/ns/net")}
		edit(r)
		return r
	}
	for _, tc := range []struct {
		name string
		req  *Request
		want bool
	}{
		{"same, through other fds", like(func(*Request) {}), true},
		{"other images dir", like(func(r *Request) { r.Opts.ImagesDirFd = int(open(other).Fd()) }), false},
		{"other work dir", like(func(r *Request) { r.Opts.WorkDirFd = int(open(other).Fd()) }), false},
		{"no network namespace", like(func(r *Request) { r.NetNS = nil }), false},
		{"cgroups", like(func(r *Request) { r.Cgroups = []string{"/sys/fs/cgroup/pids/x/tasks"} }), false},
		{"stdio", like(func(r *Request) { r.Stdio[1] = os.Stdout }), false},
		{"a file passed", like(func(r *Request) { r.AddFile(os.Stdin) }), false},
		{"no options", &Request{NetNS: started.NetNS}, false},
	} {
		if got := w.fits(tc.req); got != tc.want {
			t.Errorf("%s: fits %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A request that takes a worker names the dirs by the worker's fds and
// keeps the cgroup mode that starting CRIU in the cgroups chose.
func TestWorkerAdopt(t *testing.T) {
	ignore, soft := CgroupIgnore, CgroupSoft
	w := &Worker{fit: workerFit{imagesFd: 7, workFd: 8, cgMode: &ignore}}
	r := &Request{Opts: &Opts{ImagesDirFd: 3, WorkDirFd: 4, ManageCgroupsMode: &soft}}
	w.adopt(r)
	if r.Opts.ImagesDirFd != 7 || r.Opts.WorkDirFd != 8 {
		t.Errorf("dirs %d, %d after adopt, want the worker's 7, 8", r.Opts.ImagesDirFd, r.Opts.WorkDirFd)
	}
	if r.Opts.ManageCgroupsMode == nil || *r.Opts.ManageCgroupsMode != CgroupIgnore {
		t.Errorf("cgroup mode after adopt %v, want ignore", r.Opts.ManageCgroupsMode)
	}
	w.fit.cgMode = nil
	r.Opts.ManageCgroupsMode = &soft
	w.adopt(r)
	if *r.Opts.ManageCgroupsMode != CgroupSoft {
		t.Errorf("a worker started outside the cgroups changed the mode to %v", *r.Opts.ManageCgroupsMode)
	}
}
