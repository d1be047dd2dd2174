package checkpoint

import (
	"reflect"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/rpc"
)

// Every option lkc sets must reach CRIU as the criu_opts field it means:
// decode the request lkc sends and compare each field. The fixture sets
// every field of Opts, so an option added without its mapping fails here.
func TestRequestMatchesGoCriu(t *testing.T) {
	mode := CgroupStrict
	o := &Opts{
		ImagesDirFd: 5, WorkDirFd: 6, Pid: 1234, LogLevel: 4, LogFile: "dump.log",
		Root: "/run/x/criu-root", ParentImg: "../pre", FreezeCgroup: "/sys/fs/cgroup/freezer/a",
		LSMProfile: "apparmor:lkc-restored", LSMMountContext: "system_u:object_r:container_file_t:s0:c1,c2",
		LeaveRunning: true, ExtUnixSk: true, TCPEstablished: true, TCPSkipInFlight: true,
		EvasiveDevices: true, ShellJob: true, FileLocks: true, NotifyScripts: true,
		TrackMem: true, AutoDedup: true, LinkRemap: true, ManageCgroups: true,
		RstSibling: true, LazyPages: true, OrphanPtsMaster: true,
		ManageCgroupsMode: &mode, NetworkLock: LockNftables, EmptyNS: 0x40000000, StatusFd: 7,
		PageServerAddr: "10.0.0.1", PageServerPort: 27000, PageServerFd: 8,
		ExtMounts: []ExtMount{{"/data", "/data"}, {"/dev/null", "/dev/null"}},
		External:  []string{"net[4026531840]:extRootNetNS"},
		InheritFd: []InheritFd{{"pipe:[123]", 1}, {"extRootNetNS", 4}},
		CgRoots:   []CgroupRoot{{"memory", "/a/b"}, {"", "/c"}},
		JoinNS:    []JoinNS{{"ipc", "/proc/1/ns/ipc"}},

		CgroupDumpControllers: []string{"memory", "cpu"},
	}
	v := reflect.ValueOf(*o)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("the fixture leaves Opts.%s unset", v.Type().Field(i).Name)
		}
	}
	got := decodeRequest(t, &request{typ: reqRestore, opts: o, features: &Features{MemTrack: true}})
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
	check("lsm_profile", g.GetLsmProfile(), o.LSMProfile)
	check("lsm_mount_context", g.GetLsmMountContext(), o.LSMMountContext)
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
	check("ps.fd", g.GetPs().GetFd(), int32(8))
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
	got := decodeRequest(t, &request{typ: reqDump, opts: &Opts{ImagesDirFd: 3}})
	g := got.GetOpts()
	if g.LogLevel != nil || g.ManageCgroupsMode != nil || g.NetworkLock != nil || g.Ps != nil ||
		g.LeaveRunning != nil || g.StatusFd != nil || g.WorkDirFd != nil {
		t.Errorf("zero options were sent: %v", g)
	}
}

func decodeRequest(t *testing.T, req *request) *rpc.CriuReq {
	t.Helper()
	b, err := req.marshal()
	if err != nil {
		t.Fatal(err)
	}
	var got rpc.CriuReq
	if err := got.UnmarshalVT(b); err != nil {
		t.Fatalf("go-criu cannot decode lkc's request: %v", err)
	}
	return &got
}
