package checkpoint

import (
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"google.golang.org/protobuf/proto"
)

// The hand-written encoding must mean to CRIU what go-criu's generated code
// means: decode lkc's bytes with go-criu and compare every field set.
func TestRequestMatchesGoCriu(t *testing.T) {
	mode := CgroupStrict
	o := &Opts{
		ImagesDirFd: 5, WorkDirFd: 6, Pid: 1234, LogLevel: 4, LogFile: "dump.log",
		Root: "/run/x/criu-root", ParentImg: "../pre", FreezeCgroup: "/sys/fs/cgroup/freezer/a",
		LeaveRunning: true, ExtUnixSk: true, TCPEstablished: true, TCPSkipInFlight: true,
		EvasiveDevices: true, ShellJob: true, FileLocks: true, NotifyScripts: true,
		TrackMem: true, AutoDedup: true, LinkRemap: true, ManageCgroups: true,
		RstSibling: true, LazyPages: true, OrphanPtsMaster: true,
		ManageCgroupsMode: &mode, NetworkLock: LockNftables, EmptyNS: 0x40000000, StatusFd: 7,
		PageServerAddr: "10.0.0.1", PageServerPort: 27000,
		ExtMounts: []ExtMount{{"/data", "/data"}, {"/dev/null", "/dev/null"}},
		External:  []string{"net[4026531840]:extRootNetNS"},
		InheritFd: []InheritFd{{"pipe:[123]", 1}, {"extRootNetNS", 4}},
		CgRoots:   []CgroupRoot{{"memory", "/a/b"}, {"", "/c"}},
		JoinNS:    []JoinNS{{"ipc", "/proc/1/ns/ipc"}},

		CgroupDumpControllers: []string{"memory", "cpu"},
	}
	req := &request{typ: reqRestore, opts: o, features: &Features{MemTrack: true}}
	var got rpc.CriuReq
	if err := proto.Unmarshal(req.marshal(), &got); err != nil {
		t.Fatalf("go-criu cannot decode lkc's request: %v", err)
	}
	g := got.GetOpts()
	check := func(name string, a, b any) {
		t.Helper()
		if a != b {
			t.Errorf("%s: go-criu reads %v, lkc meant %v", name, a, b)
		}
	}
	check("type", got.GetType(), rpc.CriuReqType_RESTORE)
	check("features.mem_track", got.GetFeatures().GetMemTrack(), true)
	check("images_dir_fd", g.GetImagesDirFd(), int32(5))
	check("work_dir_fd", g.GetWorkDirFd(), int32(6))
	check("pid", g.GetPid(), int32(1234))
	check("log_level", g.GetLogLevel(), int32(4))
	check("log_file", g.GetLogFile(), "dump.log")
	check("root", g.GetRoot(), o.Root)
	check("parent_img", g.GetParentImg(), "../pre")
	check("freeze_cgroup", g.GetFreezeCgroup(), o.FreezeCgroup)
	for name, v := range map[string]bool{
		"leave_running": g.GetLeaveRunning(), "ext_unix_sk": g.GetExtUnixSk(),
		"tcp_established": g.GetTcpEstablished(), "tcp_skip_in_flight": g.GetTcpSkipInFlight(),
		"evasive_devices": g.GetEvasiveDevices(), "shell_job": g.GetShellJob(),
		"file_locks": g.GetFileLocks(), "notify_scripts": g.GetNotifyScripts(),
		"track_mem": g.GetTrackMem(), "auto_dedup": g.GetAutoDedup(), "link_remap": g.GetLinkRemap(),
		"manage_cgroups": g.GetManageCgroups(), "rst_sibling": g.GetRstSibling(),
		"lazy_pages": g.GetLazyPages(), "orphan_pts_master": g.GetOrphanPtsMaster(),
	} {
		check(name, v, true)
	}
	check("manage_cgroups_mode", g.GetManageCgroupsMode(), rpc.CriuCgMode_STRICT)
	check("network_lock", g.GetNetworkLock(), rpc.CriuNetworkLockMethod_NFTABLES)
	check("empty_ns", g.GetEmptyNs(), uint32(0x40000000))
	check("status_fd", g.GetStatusFd(), int32(7))
	check("ps.address", g.GetPs().GetAddress(), "10.0.0.1")
	check("ps.port", g.GetPs().GetPort(), int32(27000))
	check("ext_mnt count", len(g.GetExtMnt()), 2)
	check("ext_mnt[1]", g.GetExtMnt()[1].GetKey()+"="+g.GetExtMnt()[1].GetVal(), "/dev/null=/dev/null")
	check("external", g.GetExternal()[0], o.External[0])
	check("inherit_fd[0]", g.GetInheritFd()[0].GetKey(), "pipe:[123]")
	check("inherit_fd[1].fd", g.GetInheritFd()[1].GetFd(), int32(4))
	check("cg_root[0]", g.GetCgRoot()[0].GetCtrl()+":"+g.GetCgRoot()[0].GetPath(), "memory:/a/b")
	check("cg_root[1] ctrl set", g.GetCgRoot()[1].Ctrl == nil, true)
	check("cgroup_dump_controller", strings.Join(g.GetCgroupDumpController(), ","), "memory,cpu")
	check("join_ns", g.GetJoinNs()[0].GetNs()+"="+g.GetJoinNs()[0].GetNsFile(), "ipc=/proc/1/ns/ipc")
}

// Zero values are left out, so CRIU's defaults (log level 2, cgroup mode
// soft, iptables lock) apply, as they would with go-criu leaving them nil.
func TestRequestOmitsZeroValues(t *testing.T) {
	var got rpc.CriuReq
	req := &request{typ: reqDump, opts: &Opts{ImagesDirFd: 3}}
	if err := proto.Unmarshal(req.marshal(), &got); err != nil {
		t.Fatal(err)
	}
	g := got.GetOpts()
	if g.LogLevel != nil || g.ManageCgroupsMode != nil || g.NetworkLock != nil || g.Ps != nil ||
		g.LeaveRunning != nil || g.StatusFd != nil || g.WorkDirFd != nil {
		t.Errorf("zero options were sent: %v", g)
	}
}

func TestResponseMatchesGoCriu(t *testing.T) {
	cases := []*rpc.CriuResp{
		{Type: rpc.CriuReqType_RESTORE.Enum(), Success: proto.Bool(true),
			Restore: &rpc.CriuRestoreResp{Pid: proto.Int32(4321)}},
		{Type: rpc.CriuReqType_NOTIFY.Enum(), Success: proto.Bool(true),
			Notify: &rpc.CriuNotify{Script: proto.String("post-restore"), Pid: proto.Int32(77)}},
		{Type: rpc.CriuReqType_DUMP.Enum(), Success: proto.Bool(false),
			CrErrno: proto.Int32(-2), CrErrmsg: proto.String("boom")},
		{Type: rpc.CriuReqType_VERSION.Enum(), Success: proto.Bool(true),
			Version: &rpc.CriuVersion{MajorNumber: proto.Int32(4), MinorNumber: proto.Int32(1), Sublevel: proto.Int32(1), Gitid: proto.String("x")}},
		{Type: rpc.CriuReqType_FEATURE_CHECK.Enum(), Success: proto.Bool(true),
			Features: &rpc.CriuFeatures{MemTrack: proto.Bool(false), LazyPages: proto.Bool(true)}},
	}
	for _, c := range cases {
		b, err := proto.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		r, err := unmarshalResponse(b)
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		want := response{
			typ: int(c.GetType()), success: c.GetSuccess(), errno: int(c.GetCrErrno()), errmsg: c.GetCrErrmsg(),
			script: c.GetNotify().GetScript(), pid: int(c.GetRestore().GetPid() + c.GetNotify().GetPid()),
			features: Features{MemTrack: c.GetFeatures().GetMemTrack(), LazyPages: c.GetFeatures().GetLazyPages()},
			version:  [3]int{int(c.GetVersion().GetMajorNumber()), int(c.GetVersion().GetMinorNumber()), int(c.GetVersion().GetSublevel())},
		}
		if *r != want {
			t.Errorf("decoding %v: got %+v, want %+v", c, *r, want)
		}
	}
}
