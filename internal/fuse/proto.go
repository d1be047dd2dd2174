// Package fuse speaks the FUSE wire protocol on a raw /dev/fuse fd, for a
// read-only tree of small rendered files (the daemon's /proc view). It owns
// the kernel ABI of include/uapi/linux/fuse.h and nothing of lkc: no
// third-party module, so its only dependency is the kernel.
//
// Requests are decoded from and replies encoded into byte slices with
// encoding/binary in native byte order (the kernel's), without unsafe.
//
// A Go process must not read its own mount with os.Open: Go registers a
// regular file with its poller, epoll_ctl then waits for the server's
// answer to FUSE_POLL while holding the thread's P, and once every P is so
// held the server's goroutines never run; with the readers in Go's poller
// (poller.go) the poller itself is stuck. Once StopPolls has run, no
// FUSE_POLL comes and os.Open is safe. The daemon reads its own mount only
// in StopPolls, with raw system calls; tests read it so or from another
// process.
package fuse

// Protocol version this package speaks: the kernel here offers 7.45; the
// reply names the lower of the two, and every structure below has the
// layout it has had since 7.36 (Linux 5.17).
const (
	protoMajor     = 7
	protoMinor     = 45
	minKernelMinor = 36
)

// Opcodes (enum fuse_opcode) this package answers; any other gets ENOSYS.
const (
	opLookup      = 1
	opForget      = 2
	opGetattr     = 3
	opOpen        = 14
	opRead        = 15
	opStatfs      = 17
	opRelease     = 18
	opInit        = 26
	opOpendir     = 27
	opReaddir     = 28
	opReleasedir  = 29
	opInterrupt   = 36
	opPoll        = 40 // answered ENOSYS, as any other; noted (poller.go)
	opDestroy     = 38
	opBatchForget = 42
	opReaddirplus = 44
)

// RootID is the node id of the mount's root directory (FUSE_ROOT_ID).
const RootID = 1

// uniqueResend is set by the kernel in the unique id of a request it sends
// again after FUSE_NOTIFY_RESEND (FUSE_UNIQUE_RESEND).
const uniqueResend = 1 << 63

// Notification codes (enum fuse_notify_code): FUSE_NOTIFY_INVAL_INODE,
// FUSE_NOTIFY_INVAL_ENTRY, FUSE_NOTIFY_STORE and FUSE_NOTIFY_RESEND (7.40).
const (
	notifyInvalInode = 2
	notifyInvalEntry = 3
	notifyStore      = 4
	notifyResend     = 7
)

// INIT flags (fuse_init_in.flags, and flags2 shifted by 32).
const (
	initAsyncRead      = 1 << 0
	initAutoInvalData  = 1 << 12
	initDoReaddirplus  = 1 << 13
	initMaxPages       = 1 << 22
	initExplicitInval  = 1 << 25
	initParallelDirops = 1 << 18
	initExt            = 1 << 30
	initHasResend      = 1 << 39
)

// FUSE_GETATTR_FH: a GETATTR of an open file (fuse_getattr_in.getattr_flags).
const getattrFH = 1 << 0

// Sizes of the wire structures.
const (
	inHeaderSize   = 40 // fuse_in_header
	outHeaderSize  = 16 // fuse_out_header
	attrSize       = 88 // fuse_attr
	entryOutSize   = 40 + attrSize
	attrOutSize    = 16 + attrSize
	initInSize     = 64 // fuse_init_in (with flags2 and unused[11])
	initOutSize    = 64 // fuse_init_out (7.36+)
	openOutSize    = 16
	readInSize     = 40
	invalInodeSize = 24 // fuse_notify_inval_inode_out
	statfsOutSize  = 80 // fuse_kstatfs
	direntBaseSize = 24 // fuse_dirent without the name
	forgetOneSize  = 16 // fuse_forget_one
)

// maxWrite and maxPages bound one request: max_write is announced (no
// WRITE ever comes on a read-only mount, but the kernel sizes the read
// buffer check on it) and max_pages caps a READ at 128 KiB.
const (
	maxWrite = 128 << 10
	maxPages = 32
	// bufSize is what each reader reads into; the kernel refuses a read
	// smaller than max_write plus the request headers (and 8 KiB).
	bufSize = maxWrite + 4096
)
