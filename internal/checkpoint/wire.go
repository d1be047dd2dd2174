package checkpoint

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v8/rpc"
)

// CRIU speaks protobuf (rpc.proto of CRIU). The messages are go-criu v8's
// generated code (protobuf-go-lite: no reflection, no registry), which adds
// nothing measurable to lkc's start-up, unlike google.golang.org/protobuf
// (about 0.3 ms of package initialisation for every command); encoding and
// decoding take microseconds either way (wire_bench_test.go, docs/criu.md).
// Opts is lkc's narrow, value-typed view of criu_opts; criuOpts maps it.

// Request types (criu_req_type).
const (
	reqDump         = rpc.CriuReqType_DUMP
	reqRestore      = rpc.CriuReqType_RESTORE
	reqPreDump      = rpc.CriuReqType_PRE_DUMP
	reqNotify       = rpc.CriuReqType_NOTIFY
	reqFeatureCheck = rpc.CriuReqType_FEATURE_CHECK
	reqVersion      = rpc.CriuReqType_VERSION
)

// CgroupMode is CRIU's criu_cg_mode: how much of the cgroups it restores.
type CgroupMode int

// The modes runc's --manage-cgroups-mode names.
const (
	CgroupIgnore CgroupMode = 0
	CgroupSoft   CgroupMode = 3
	CgroupFull   CgroupMode = 4
	CgroupStrict CgroupMode = 5
)

// NetworkLock is CRIU's criu_network_lock_method.
type NetworkLock int

// The methods CRIU 4 offers.
const (
	LockIptables NetworkLock = 1
	LockNftables NetworkLock = 2
	LockSkip     NetworkLock = 3
)

// ExtMount maps an external mount: on dump the mount point inside the
// container (Key) to the name stored in the images (Val); on restore that
// name (Key) to the host path to mount (Val).
type ExtMount struct{ Key, Val string }

// InheritFd hands CRIU an fd of its own process (Fd) for the resource the
// images name Key (a pipe "pipe:[ino]", an external namespace key, ...).
type InheritFd struct {
	Key string
	Fd  int
}

// CgroupRoot moves a controller's root ("" = every controller) on restore.
type CgroupRoot struct{ Ctrl, Path string }

// JoinNS makes the restored tasks join an existing namespace.
type JoinNS struct{ NS, File string }

// Opts is the subset of criu_opts lkc sets. Zero values are not sent, so
// CRIU's own defaults apply.
type Opts struct {
	ImagesDirFd, WorkDirFd, Pid int
	LogLevel                    int
	LogFile, Root, ParentImg    string
	FreezeCgroup                string
	// LSMProfile and LSMMountContext are restore's lsm_profile and
	// lsm_mount_context: CRIU applies them in place of the images' own.
	LSMProfile, LSMMountContext string

	LeaveRunning, ExtUnixSk, TCPEstablished, TCPSkipInFlight bool
	EvasiveDevices, ShellJob, FileLocks, NotifyScripts       bool
	TrackMem, AutoDedup, LinkRemap, ManageCgroups            bool
	RstSibling, LazyPages, OrphanPtsMaster                   bool

	ManageCgroupsMode *CgroupMode
	NetworkLock       NetworkLock
	EmptyNS           uint32
	StatusFd          int // -1 or 0: none

	PageServerAddr string
	PageServerPort int
	// PageServerFd, when above 0, is CRIU's fd of a connection to the page
	// server lkc made (DialPageServer), which a dump then sends its pages
	// on instead of connecting itself; CRIU ignores it for a lazy dump.
	PageServerFd int

	ExtMounts []ExtMount
	External  []string
	// CgroupDumpControllers limits the cgroup hierarchies CRIU dumps.
	CgroupDumpControllers []string
	InheritFd             []InheritFd
	CgRoots               []CgroupRoot
	JoinNS                []JoinNS
}

// criuOpts is o as criu_opts. Zero values stay unset, so CRIU's own
// defaults apply (log level 2, cgroup mode soft, iptables lock).
func (o *Opts) criuOpts() *rpc.CriuOpts {
	c := &rpc.CriuOpts{
		ImagesDirFd:     int32p(o.ImagesDirFd, true),
		Pid:             int32p(o.Pid, false),
		LogLevel:        int32p(o.LogLevel, false),
		LogFile:         stringp(o.LogFile),
		Root:            stringp(o.Root),
		ParentImg:       stringp(o.ParentImg),
		FreezeCgroup:    stringp(o.FreezeCgroup),
		LsmProfile:      stringp(o.LSMProfile),
		LsmMountContext: stringp(o.LSMMountContext),
		LeaveRunning:    boolp(o.LeaveRunning),
		ExtUnixSk:       boolp(o.ExtUnixSk),
		TcpEstablished:  boolp(o.TCPEstablished),
		TcpSkipInFlight: boolp(o.TCPSkipInFlight),
		EvasiveDevices:  boolp(o.EvasiveDevices),
		ShellJob:        boolp(o.ShellJob),
		FileLocks:       boolp(o.FileLocks),
		NotifyScripts:   boolp(o.NotifyScripts),
		TrackMem:        boolp(o.TrackMem),
		AutoDedup:       boolp(o.AutoDedup),
		LinkRemap:       boolp(o.LinkRemap),
		ManageCgroups:   boolp(o.ManageCgroups),
		RstSibling:      boolp(o.RstSibling),
		LazyPages:       boolp(o.LazyPages),
		OrphanPtsMaster: boolp(o.OrphanPtsMaster),

		External:             o.External,
		CgroupDumpController: o.CgroupDumpControllers,
	}
	if o.WorkDirFd > 0 {
		c.WorkDirFd = int32p(o.WorkDirFd, false)
	}
	if o.StatusFd > 0 {
		c.StatusFd = int32p(o.StatusFd, false)
	}
	if o.ManageCgroupsMode != nil {
		m := rpc.CriuCgMode(*o.ManageCgroupsMode)
		c.ManageCgroupsMode = &m
	}
	if o.NetworkLock != 0 {
		l := rpc.CriuNetworkLockMethod(o.NetworkLock)
		c.NetworkLock = &l
	}
	if o.EmptyNS != 0 {
		c.EmptyNs = &o.EmptyNS
	}
	if o.PageServerAddr != "" || o.PageServerPort != 0 {
		c.Ps = &rpc.CriuPageServerInfo{Address: stringp(o.PageServerAddr), Port: int32p(o.PageServerPort, true)}
		if o.PageServerFd > 0 {
			c.Ps.Fd = int32p(o.PageServerFd, false)
		}
	}
	o.criuLists(c)
	return c
}

// criuLists adds the repeated messages. Their key and value fields are
// required in rpc.proto, so they are sent even when empty.
func (o *Opts) criuLists(c *rpc.CriuOpts) {
	for _, m := range o.ExtMounts {
		c.ExtMnt = append(c.ExtMnt, &rpc.ExtMountMap{Key: &m.Key, Val: &m.Val})
	}
	for _, r := range o.CgRoots {
		c.CgRoot = append(c.CgRoot, &rpc.CgroupRoot{Ctrl: stringp(r.Ctrl), Path: &r.Path})
	}
	for _, f := range o.InheritFd {
		c.InheritFd = append(c.InheritFd, &rpc.InheritFd{Key: &f.Key, Fd: int32p(f.Fd, true)})
	}
	for _, j := range o.JoinNS {
		c.JoinNs = append(c.JoinNs, &rpc.JoinNamespace{Ns: &j.NS, NsFile: &j.File})
	}
}

// int32p points at v, or is nil when v is 0 and zero is not to be sent.
func int32p(v int, sendZero bool) *int32 {
	if v == 0 && !sendZero {
		return nil
	}
	n := int32(v)
	return &n
}

func stringp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func boolp(b bool) *bool {
	if !b {
		return nil
	}
	return &b
}

// request is a criu_req.
type request struct {
	typ           rpc.CriuReqType
	opts          *Opts
	notifySuccess bool
	features      *Features
}

func (r *request) marshal() ([]byte, error) {
	req := &rpc.CriuReq{Type: &r.typ, NotifySuccess: boolp(r.notifySuccess)}
	if r.opts != nil {
		req.Opts = r.opts.criuOpts()
	}
	if r.features != nil {
		req.Features = &rpc.CriuFeatures{MemTrack: boolp(r.features.MemTrack), LazyPages: boolp(r.features.LazyPages)}
	}
	b, err := req.MarshalVT()
	if err != nil {
		return nil, fmt.Errorf("encoding CRIU request: %w", err)
	}
	return b, nil
}

// Features are the criu_features CRIU reports on this host and kernel.
type Features struct{ MemTrack, LazyPages bool }

func unmarshalResponse(b []byte) (*rpc.CriuResp, error) {
	var r rpc.CriuResp
	if err := r.UnmarshalVT(b); err != nil {
		return nil, fmt.Errorf("decoding CRIU response: %w", err)
	}
	return &r, nil
}
