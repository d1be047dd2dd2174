package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// CRIU speaks protobuf (rpc.proto of CRIU, mirrored by go-criu's rpc
// package). lkc encodes the few messages it needs by hand: linking the
// protobuf runtime costs every lkc command, `run` included, about 0.3 ms of
// package initialisation, and checkpointing is rare. wire_test.go checks
// this encoding against go-criu's generated code.

// Request types (criu_req_type).
const (
	reqDump         = 1
	reqRestore      = 2
	reqPreDump      = 4
	reqNotify       = 6
	reqFeatureCheck = 9
	reqVersion      = 10
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

	ExtMounts []ExtMount
	External  []string
	// CgroupDumpControllers limits the cgroup hierarchies CRIU dumps.
	CgroupDumpControllers []string
	InheritFd             []InheritFd
	CgRoots               []CgroupRoot
	JoinNS                []JoinNS
}

type encoder []byte

func (e *encoder) tag(field, wt int) { *e = binary.AppendUvarint(*e, uint64(field<<3|wt)) }

func (e *encoder) varint(field int, v uint64) {
	e.tag(field, 0)
	*e = binary.AppendUvarint(*e, v)
}

// int32 fields are sign-extended to 64 bits on the wire.
func (e *encoder) int32(field, v int) { e.varint(field, uint64(int64(int32(v)))) }

func (e *encoder) bool(field int, v bool) {
	if v {
		e.varint(field, 1)
	}
}

func (e *encoder) bytes(field int, b []byte) {
	e.tag(field, 2)
	*e = binary.AppendUvarint(*e, uint64(len(b)))
	*e = append(*e, b...)
}

func (e *encoder) string(field int, s string) {
	if s != "" {
		e.bytes(field, []byte(s))
	}
}

func (o *Opts) marshal() []byte {
	var e encoder
	o.marshalScalars(&e)
	o.marshalLists(&e)
	return e
}

// marshalScalars encodes the single-valued fields.
func (o *Opts) marshalScalars(e *encoder) {
	e.int32(1, o.ImagesDirFd)
	if o.Pid != 0 {
		e.int32(2, o.Pid)
	}
	e.bool(3, o.LeaveRunning)
	e.bool(4, o.ExtUnixSk)
	e.bool(5, o.TCPEstablished)
	e.bool(6, o.EvasiveDevices)
	e.bool(7, o.ShellJob)
	e.bool(8, o.FileLocks)
	if o.LogLevel != 0 {
		e.int32(9, o.LogLevel)
	}
	e.string(10, o.LogFile)
	if o.PageServerAddr != "" || o.PageServerPort != 0 {
		var ps encoder
		ps.string(1, o.PageServerAddr)
		ps.int32(2, o.PageServerPort)
		e.bytes(11, ps)
	}
	e.bool(12, o.NotifyScripts)
	e.string(13, o.Root)
	e.string(14, o.ParentImg)
	e.bool(15, o.TrackMem)
	e.bool(16, o.AutoDedup)
	if o.WorkDirFd > 0 {
		e.int32(17, o.WorkDirFd)
	}
	e.bool(18, o.LinkRemap)
}

// marshalLists encodes the repeated and late fields (order does not
// matter on the wire).
func (o *Opts) marshalLists(e *encoder) {
	for _, m := range o.ExtMounts {
		var sub encoder
		sub.bytes(1, []byte(m.Key))
		sub.bytes(2, []byte(m.Val))
		e.bytes(23, sub)
	}
	e.bool(24, o.ManageCgroups)
	for _, r := range o.CgRoots {
		var sub encoder
		sub.string(1, r.Ctrl)
		sub.bytes(2, []byte(r.Path))
		e.bytes(25, sub)
	}
	e.bool(26, o.RstSibling)
	for _, f := range o.InheritFd {
		var sub encoder
		sub.bytes(1, []byte(f.Key))
		sub.int32(2, f.Fd)
		e.bytes(27, sub)
	}
	if o.ManageCgroupsMode != nil {
		e.varint(34, uint64(*o.ManageCgroupsMode))
	}
	for _, x := range o.External {
		e.bytes(37, []byte(x))
	}
	if o.EmptyNS != 0 {
		e.varint(38, uint64(o.EmptyNS))
	}
	for _, j := range o.JoinNS {
		var sub encoder
		sub.bytes(1, []byte(j.NS))
		sub.bytes(2, []byte(j.File))
		e.bytes(39, sub)
	}
	for _, c := range o.CgroupDumpControllers {
		e.bytes(43, []byte(c))
	}
	e.string(44, o.FreezeCgroup)
	e.bool(46, o.TCPSkipInFlight)
	e.bool(48, o.LazyPages)
	if o.StatusFd > 0 {
		e.int32(49, o.StatusFd)
	}
	e.bool(50, o.OrphanPtsMaster)
	if o.NetworkLock != 0 {
		e.varint(64, uint64(o.NetworkLock))
	}
}

// request is a criu_req.
type request struct {
	typ           int
	opts          *Opts
	notifySuccess bool
	features      *Features
}

func (r *request) marshal() []byte {
	var e encoder
	e.varint(1, uint64(r.typ))
	if r.opts != nil {
		e.bytes(2, r.opts.marshal())
	}
	e.bool(3, r.notifySuccess)
	if r.features != nil {
		var f encoder
		f.bool(1, r.features.MemTrack)
		f.bool(2, r.features.LazyPages)
		e.bytes(5, f)
	}
	return e
}

// Features are the criu_features CRIU reports on this host and kernel.
type Features struct{ MemTrack, LazyPages bool }

// response is the part of a criu_resp lkc reads.
type response struct {
	typ      int
	success  bool
	errno    int
	errmsg   string
	script   string // notify
	pid      int    // notify, or the restored root task
	features Features
	version  [3]int // major, minor, sublevel
}

// field is one decoded protobuf field: a varint, or the bytes of a
// length-delimited one.
type field struct {
	num int
	v   uint64
	b   []byte
}

// fields splits a message into its fields; fixed-size fields, which CRIU's
// responses do not use, are skipped.
func fields(b []byte) ([]field, error) {
	var out []field
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errors.New("bad field key")
		}
		b = b[n:]
		f := field{num: int(key >> 3)}
		switch key & 7 {
		case 0:
			if f.v, n = binary.Uvarint(b); n <= 0 {
				return nil, errors.New("bad varint")
			}
			b = b[n:]
		case 1, 5:
			size := map[uint64]int{1: 8, 5: 4}[key&7]
			if len(b) < size {
				return nil, errors.New("truncated fixed field")
			}
			b = b[size:]
			continue
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return nil, errors.New("truncated field")
			}
			f.b, b = b[n:n+int(l)], b[n+int(l):]
		default:
			return nil, fmt.Errorf("unsupported wire type %d", key&7)
		}
		out = append(out, f)
	}
	return out, nil
}

func unmarshalResponse(b []byte) (*response, error) {
	fs, err := fields(b)
	if err != nil {
		return nil, fmt.Errorf("decoding CRIU response: %w", err)
	}
	r := &response{}
	for _, f := range fs {
		switch f.num {
		case 1:
			r.typ = int(f.v)
		case 2:
			r.success = f.v != 0
		case 4, 5: // restore {pid = 1}, notify {script = 1, pid = 2}
			sub, err := fields(f.b)
			if err != nil {
				return nil, fmt.Errorf("decoding CRIU response: %w", err)
			}
			r.readNested(f.num, sub)
		case 7:
			r.errno = int(int32(f.v))
		case 8:
			sub, err := fields(f.b)
			if err != nil {
				return nil, fmt.Errorf("decoding CRIU features: %w", err)
			}
			for _, s := range sub {
				switch s.num {
				case 1:
					r.features.MemTrack = s.v != 0
				case 2:
					r.features.LazyPages = s.v != 0
				}
			}
		case 9:
			r.errmsg = string(f.b)
		case 10:
			sub, err := fields(f.b)
			if err != nil {
				return nil, fmt.Errorf("decoding CRIU version: %w", err)
			}
			for _, s := range sub {
				switch s.num {
				case 1, 2:
					r.version[s.num-1] = int(s.v)
				case 4:
					r.version[2] = int(s.v)
				}
			}
		}
	}
	return r, nil
}

func (r *response) readNested(num int, sub []field) {
	for _, s := range sub {
		switch {
		case num == 4 && s.num == 1, num == 5 && s.num == 2:
			r.pid = int(int32(s.v))
		case num == 5 && s.num == 1:
			r.script = string(s.b)
		}
	}
}
