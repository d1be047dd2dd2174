package checkpoint

import (
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/rpc"
)

// These time what a container's dump and restore cost lkc on the RPC:
// building and encoding the request, decoding CRIU's answers. docs/criu.md
// compares them with the hand encoding lkc had before go-criu v8.

func dumpOpts() *Opts {
	mode := CgroupSoft
	return &Opts{
		ImagesDirFd: 5, WorkDirFd: 6, Pid: 1234, LogLevel: 4, LogFile: "dump.log",
		Root: "/run/lkc/x/criu-root", FreezeCgroup: "/sys/fs/cgroup/freezer/a",
		ExtUnixSk: true, TCPEstablished: true, FileLocks: true, LinkRemap: true,
		ManageCgroups: true, OrphanPtsMaster: true, ManageCgroupsMode: &mode,
		ExtMounts: []ExtMount{{"/etc/hosts", "/etc/hosts"}, {"/etc/resolv.conf", "/etc/resolv.conf"},
			{"/dev/null", "/dev/null"}, {"/data", "/data"}},
		External:              []string{"net[4026531840]:extRootNetNS"},
		CgroupDumpControllers: []string{"memory", "cpu", "pids"},
	}
}

func restoreOpts() *Opts {
	o := dumpOpts()
	o.Pid, o.FreezeCgroup, o.ExtUnixSk = 0, "", false
	o.RstSibling, o.StatusFd = true, 7
	o.InheritFd = []InheritFd{{"pipe:[123]", 3}, {"pipe:[124]", 4}, {"extRootNetNS", 8}}
	o.CgRoots = []CgroupRoot{{"", "/lkc/x"}}
	return o
}

func benchRequest(b *testing.B, typ rpc.CriuReqType, opts func() *Opts) {
	b.ReportAllocs()
	for b.Loop() {
		req := &request{typ: typ, opts: opts()}
		if _, err := req.marshal(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDumpRequest(b *testing.B)    { benchRequest(b, reqDump, dumpOpts) }
func BenchmarkRestoreRequest(b *testing.B) { benchRequest(b, reqRestore, restoreOpts) }

// BenchmarkResponses decodes CRIU's answers to a dump and to a restore.
func BenchmarkResponses(b *testing.B) {
	typ, rtyp, ok, pid := reqDump, reqRestore, true, int32(4321)
	var msgs [2][]byte
	var err error
	if msgs[0], err = (&rpc.CriuResp{Type: &typ, Success: &ok}).MarshalVT(); err != nil {
		b.Fatal(err)
	}
	if msgs[1], err = (&rpc.CriuResp{Type: &rtyp, Success: &ok, Restore: &rpc.CriuRestoreResp{Pid: &pid}}).MarshalVT(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, m := range msgs {
			if r, err := unmarshalResponse(m); err != nil || !r.GetSuccess() {
				b.Fatal(err)
			}
		}
	}
}
