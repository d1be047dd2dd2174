package fuse

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseRequestRoundTrip(t *testing.T) {
	in := request{Opcode: opLookup, Unique: uniqueResend | 10, Node: 7, UID: 1, GID: 2, PID: 3, Body: []byte("meminfo\x00")}
	b := encodeRequest(in)
	got, err := parseRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	in.Len = uint32(len(b))
	if fmt.Sprint(got) != fmt.Sprint(in) {
		t.Fatalf("got %+v, want %+v", got, in)
	}
}

func TestParseRequestStripsExtensions(t *testing.T) {
	b := encodeRequest(request{Opcode: opLookup, Body: []byte("x\x00\x00\x00\x00\x00\x00\x00ext-ext-")})
	ne.PutUint16(b[36:], 1)
	r, err := parseRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Body) != "x\x00\x00\x00\x00\x00\x00\x00" {
		t.Fatalf("body %q still holds the extension", r.Body)
	}
}

func TestParseRequestRefusesBadLengths(t *testing.T) {
	good := encodeRequest(request{Opcode: opGetattr, Body: make([]byte, 16)})
	for name, b := range map[string][]byte{
		"short":     good[:inHeaderSize-1],
		"truncated": good[:len(good)-1],
		"extlen": func() []byte {
			c := bytes.Clone(good)
			ne.PutUint16(c[36:], 10)
			return c
		}(),
	} {
		if _, err := parseRequest(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestReplyHeader(t *testing.T) {
	b := reply(42, syscall.ENOENT, []byte("ignored"))
	if len(b) != outHeaderSize || ne.Uint32(b[0:]) != outHeaderSize || int32(ne.Uint32(b[4:])) != -int32(syscall.ENOENT) || ne.Uint64(b[8:]) != 42 {
		t.Fatalf("error reply % x", b)
	}
	b = reply(uniqueResend|3, 0, []byte("abc"))
	if ne.Uint32(b[0:]) != outHeaderSize+3 || ne.Uint32(b[4:]) != 0 || ne.Uint64(b[8:]) != uniqueResend|3 || string(b[16:]) != "abc" {
		t.Fatalf("reply % x", b)
	}
	n := notification(notifyResend, nil)
	if len(n) != outHeaderSize || ne.Uint32(n[4:]) != notifyResend || ne.Uint64(n[8:]) != 0 {
		t.Fatalf("resend notification % x", n)
	}
}

func TestErrnoMapping(t *testing.T) {
	if errno(fmt.Errorf("stat x: %w", syscall.ENOENT)) != syscall.ENOENT {
		t.Error("wrapped errno lost")
	}
	if errno(errors.New("plain")) != syscall.EIO {
		t.Error("plain error is not EIO")
	}
}

func initBody(minor, flags, flags2 uint32) []byte {
	b := make([]byte, initInSize)
	ne.PutUint32(b[0:], 7)
	ne.PutUint32(b[4:], minor)
	ne.PutUint32(b[8:], 65536)
	ne.PutUint32(b[12:], flags)
	ne.PutUint32(b[16:], flags2)
	return b
}

func call(t *testing.T, s *Server, r request) (syscall.Errno, []byte) {
	t.Helper()
	r.Unique = 99
	req, err := parseRequest(encodeRequest(r))
	if err != nil {
		t.Fatal(err)
	}
	out := s.handle(req)
	if out == nil {
		return 0, nil
	}
	if ne.Uint64(out[8:]) != 99 || int(ne.Uint32(out[0:])) != len(out) {
		t.Fatalf("reply header % x", out[:outHeaderSize])
	}
	return syscall.Errno(-int32(ne.Uint32(out[4:]))), out[outHeaderSize:]
}

func TestInitNegotiates(t *testing.T) {
	s := NewServer(newTreeFS(nil))
	offered := uint32(initAsyncRead | initParallelDirops | initMaxPages | initAutoInvalData | initExt)
	e, out := call(t, s, request{Opcode: opInit, Body: initBody(45, offered, uint32(initHasResend>>32))})
	if e != 0 || len(out) != initOutSize {
		t.Fatalf("init: errno %v, %d bytes", e, len(out))
	}
	if ne.Uint32(out[0:]) != 7 || ne.Uint32(out[4:]) != 45 {
		t.Errorf("version %d.%d", ne.Uint32(out[0:]), ne.Uint32(out[4:]))
	}
	if f := ne.Uint32(out[12:]); f != initParallelDirops|initMaxPages|initAutoInvalData|initExt {
		t.Errorf("flags %#x", f)
	}
	if ne.Uint32(out[20:]) != maxWrite || ne.Uint16(out[28:]) != maxPages {
		t.Errorf("max_write %d max_pages %d", ne.Uint32(out[20:]), ne.Uint16(out[28:]))
	}
	if s.Inval() != InvalAuto {
		t.Errorf("AUTO_INVAL_DATA alone offered: inval %d", s.Inval())
	}
	// Both offered (every kernel since 5.2): EXPLICIT_INVAL_DATA, which
	// the kernel takes only without AUTO_INVAL_DATA, and the caller hears
	// of it before the answer.
	var told []Inval
	s.OnInit = func(m Inval) { told = append(told, m) }
	_, out = call(t, s, request{Opcode: opInit, Body: initBody(45, offered|initExplicitInval, 0)})
	if f := ne.Uint32(out[12:]); f != initParallelDirops|initMaxPages|initExplicitInval|initExt {
		t.Errorf("flags %#x with EXPLICIT_INVAL_DATA offered", f)
	}
	if s.Inval() != InvalExplicit || len(told) != 1 || told[0] != InvalExplicit {
		t.Errorf("inval %d, OnInit told %v; want explicit", s.Inval(), told)
	}
	s.AutoInval = true
	_, out = call(t, s, request{Opcode: opInit, Body: initBody(45, offered|initExplicitInval, 0)})
	if f := ne.Uint32(out[12:]); f&initExplicitInval != 0 || f&initAutoInvalData == 0 || s.Inval() != InvalAuto {
		t.Errorf("AutoInval: flags %#x, inval %d; want AUTO_INVAL_DATA", f, s.Inval())
	}
	_, out = call(t, s, request{Opcode: opInit, Body: initBody(99, 0, 0)})
	if ne.Uint32(out[4:]) != protoMinor {
		t.Errorf("a newer kernel got minor %d", ne.Uint32(out[4:]))
	}
	if e, _ := call(t, s, request{Opcode: opInit, Body: initBody(30, 0, 0)}); e != syscall.EPROTO {
		t.Errorf("kernel 7.30: errno %v, want EPROTO", e)
	}
}

func TestLookupGetattrReaddir(t *testing.T) {
	s := NewServer(newTreeFS(map[string]func(int) ([]byte, error){"meminfo": static("x"), "stat": static("y")}))
	e, out := call(t, s, request{Opcode: opLookup, Node: RootID, Body: []byte("stat\x00")})
	if e != 0 || len(out) != entryOutSize || ne.Uint64(out[0:]) != 101 {
		t.Fatalf("lookup stat: errno %v, % x", e, out)
	}
	if mode := ne.Uint32(out[40+60:]); mode != syscall.S_IFREG|0o444 {
		t.Errorf("mode %o", mode)
	}
	if ne.Uint64(out[16:]) != 1 || ne.Uint64(out[24:]) != 0 || ne.Uint32(out[36:]) != 0 {
		t.Errorf("a file's entry valid %d s, attributes %d s; want cached, uncached (Fresh 0)", ne.Uint64(out[16:]), ne.Uint64(out[24:]))
	}
	if b := entryOut(Attr{}, 1500*time.Millisecond, 250*time.Millisecond); ne.Uint64(b[16:]) != 1 || ne.Uint32(b[32:]) != 500e6 || ne.Uint64(b[24:]) != 0 || ne.Uint32(b[36:]) != 250e6 {
		t.Errorf("entry_out timeouts % x", b[16:40])
	}
	if e, _ := call(t, s, request{Opcode: opLookup, Node: RootID, Body: []byte("nope\x00")}); e != syscall.ENOENT {
		t.Errorf("lookup nope: %v", e)
	}
	if e, _ := call(t, s, request{Opcode: opGetattr, Node: 555, Body: make([]byte, 16)}); e != syscall.ESTALE {
		t.Errorf("getattr of a dead node: %v", e)
	}
	e, out = call(t, s, request{Opcode: opGetattr, Node: 100, Body: make([]byte, 16)})
	if e != 0 || ne.Uint64(out[16+8:]) != 1 || ne.Uint64(out[0:]) != 0 {
		t.Errorf("getattr meminfo: size %d valid %d, want its rendering's length, uncached", ne.Uint64(out[16+8:]), ne.Uint64(out[0:]))
	}
	e, out = call(t, s, request{Opcode: opGetattr, Node: RootID, Body: make([]byte, 16)})
	if e != 0 || len(out) != attrOutSize || ne.Uint32(out[16+64:]) != 2 {
		t.Errorf("getattr root: %v % x", e, out)
	}
	names := readdirNames(t, s, 0, 4096)
	if strings.Join(names, " ") != ". .. meminfo stat" {
		t.Errorf("readdir: %q", names)
	}
	// A buffer for one entry at a time: offsets carry on where it stopped.
	var one []string
	for off := uint64(0); ; off++ {
		n := readdirNames(t, s, off, 32)
		if len(n) == 0 {
			break
		}
		one = append(one, n...)
	}
	if strings.Join(one, " ") != ". .. meminfo stat" {
		t.Errorf("readdir one by one: %q", one)
	}
}

func readdirNames(t *testing.T, s *Server, off uint64, size uint32) []string {
	t.Helper()
	e, out := call(t, s, request{Opcode: opReaddir, Node: RootID, Body: readBody(0, off, size)})
	if e != 0 {
		t.Fatalf("readdir: %v", e)
	}
	var names []string
	for len(out) > 0 {
		nl := int(ne.Uint32(out[16:]))
		names = append(names, string(out[direntBaseSize:direntBaseSize+nl]))
		out = out[(direntBaseSize+nl+7)&^7:]
	}
	return names
}

func readBody(fh, off uint64, size uint32) []byte {
	b := make([]byte, readInSize)
	ne.PutUint64(b[0:], fh)
	ne.PutUint64(b[8:], off)
	ne.PutUint32(b[16:], size)
	return b
}

func getattr(t *testing.T, s *Server, node uint64) (size uint64, valid time.Duration) {
	t.Helper()
	e, out := call(t, s, request{Opcode: opGetattr, Node: node, Body: make([]byte, 16)})
	if e != 0 || len(out) != attrOutSize {
		t.Fatalf("getattr %d: %v", node, e)
	}
	return ne.Uint64(out[16+8:]), time.Duration(ne.Uint64(out[0:]))*time.Second + time.Duration(ne.Uint32(out[8:]))
}

func read(t *testing.T, s *Server, node, off uint64, size uint32) (syscall.Errno, string) {
	t.Helper()
	e, out := call(t, s, request{Opcode: opRead, Node: node, Body: readBody(0, off, size)})
	return e, string(out)
}

// TestReadServesOneVersion: a GETATTR renders the file and every READ
// until the next rendering is a slice of that one; a GETATTR within the
// file's Fresh takes it again.
func TestReadServesOneVersion(t *testing.T) {
	fs := newTreeFS(map[string]func(int) ([]byte, error){"gen": generations(100)})
	fs.fresh = 100 * time.Millisecond
	s := NewServer(fs)
	size, valid := getattr(t, s, 100)
	if size != 100 || valid != fs.fresh {
		t.Fatalf("getattr: size %d valid %v, want 100, about Fresh", size, valid)
	}
	var got string
	for off := uint64(0); ; off += 7 {
		_, piece := read(t, s, 100, off, 7)
		if piece == "" {
			break
		}
		got += piece
	}
	want, _ := generations(100)(1)
	if got != string(want) || fs.renders.Load() != 1 {
		t.Fatalf("read in pieces %q after %d renderings, want one rendering %q", got, fs.renders.Load(), want)
	}
	if _, valid = getattr(t, s, 100); fs.renders.Load() != 1 || valid >= fs.fresh || valid <= 0 {
		t.Fatalf("a GETATTR right after rendered again (%d renderings) or kept it %v", fs.renders.Load(), valid)
	}
	time.Sleep(fs.fresh)
	_, valid = getattr(t, s, 100)
	if _, c := read(t, s, 100, 0, 20); c != "generation 00000002\n" || valid != fs.fresh {
		t.Fatalf("after a later GETATTR read %q (valid %v), want the second rendering", c, valid)
	}
	if e, rest := read(t, s, 100, 1000, 20); e != 0 || rest != "" {
		t.Fatalf("read past the end: %v %q", e, rest)
	}
}

// TestReadWithoutVersionRenders: a READ of a file this server answered no
// GETATTR for (a predecessor did) renders it.
func TestReadWithoutVersionRenders(t *testing.T) {
	fs := newTreeFS(map[string]func(int) ([]byte, error){"a": static("hello world\n"), "b": static("bbbb")})
	s := NewServer(fs)
	if e, got := read(t, s, 100, 6, 100); e != 0 || got != "world\n" {
		t.Fatalf("read without a version: %v %q", e, got)
	}
	if _, got := read(t, s, 101, 2, 4); got != "bb" {
		t.Fatalf("node b after node a read %q", got)
	}
}

func TestRenderErrorsReachTheReader(t *testing.T) {
	fs := newTreeFS(map[string]func(int) ([]byte, error){
		"gone":  failing(fmt.Errorf("read memory.stat: %w", syscall.ENOENT)),
		"plain": failing(errors.New("bad format")),
	})
	s := NewServer(fs)
	for node, want := range map[uint64]syscall.Errno{100: syscall.ENOENT, 101: syscall.EIO} {
		if e, _ := call(t, s, request{Opcode: opGetattr, Node: node, Body: make([]byte, 16)}); e != want {
			t.Errorf("getattr %d: %v, want %v", node, e, want)
		}
		if e, _ := read(t, s, node, 0, 10); e != want {
			t.Errorf("read %d: %v, want %v", node, e, want)
		}
	}
}

func TestOtherOpcodes(t *testing.T) {
	s := NewServer(newTreeFS(map[string]func(int) ([]byte, error){"a": static("a")}))
	if e, out := call(t, s, request{Opcode: opForget, Node: 100, Body: make([]byte, 8)}); e != 0 || out != nil {
		t.Errorf("forget answered")
	}
	if e, _ := call(t, s, request{Opcode: opBatchForget, Body: make([]byte, 8)}); e != 0 {
		t.Errorf("batch forget answered")
	}
	for _, op := range []uint32{4 /* SETATTR */, 16 /* WRITE */, 25 /* FLUSH */, opInterrupt, 52 /* STATX */, 500} {
		if e, _ := call(t, s, request{Opcode: op, Node: 100}); e != syscall.ENOSYS {
			t.Errorf("opcode %d: %v, want ENOSYS", op, e)
		}
	}
	if e, out := call(t, s, request{Opcode: opStatfs, Node: RootID}); e != 0 || len(out) != statfsOutSize {
		t.Errorf("statfs: %v, %d bytes", e, len(out))
	}
	if e, _ := call(t, s, request{Opcode: opOpen, Node: RootID, Body: make([]byte, 8)}); e != syscall.EISDIR {
		t.Errorf("open of a directory: %v", e)
	}
	if e, _ := call(t, s, request{Opcode: opOpen, Node: 100, Body: make([]byte, 8)}); e != syscall.ENOSYS {
		t.Errorf("open of a file: %v, want ENOSYS (opens without asking)", e)
	}
	if e, _ := call(t, s, request{Opcode: opOpendir, Node: 77, Body: make([]byte, 8)}); e != syscall.ESTALE {
		t.Errorf("opendir of a dead node: %v", e)
	}
	if e, _ := call(t, s, request{Opcode: opDestroy}); e != 0 {
		t.Errorf("destroy: %v", e)
	}
}

// TestStandInIsNotKept: content the FS marks as a stand-in is given to the
// kernel with no attribute time, and the next GETATTR renders again.
func TestStandInIsNotKept(t *testing.T) {
	fs := newTreeFS(map[string]func(int) ([]byte, error){"gen": generations(20)})
	fs.fresh, fs.standIn = time.Second, true
	s := NewServer(fs)
	if _, valid := getattr(t, s, 100); valid != 0 {
		t.Errorf("a stand-in kept %v", valid)
	}
	time.Sleep(reuseWithin)
	getattr(t, s, 100)
	if _, c := read(t, s, 100, 0, 20); c != "generation 00000002\n" {
		t.Errorf("read %q after a second GETATTR, want the second rendering", c)
	}
}

// TestReaddirplusEntries: each listed name carries its LOOKUP answer (a
// file never rendered: the size above any rendering), "." and ".." none
// (node id 0), and a small buffer carries on by offsets.
func TestReaddirplusEntries(t *testing.T) {
	s := NewServer(newTreeFS(map[string]func(int) ([]byte, error){"meminfo": static("xy"), "stat": static("y")}))
	var got []string
	for off := uint64(0); ; {
		e, out := call(t, s, request{Opcode: opReaddirplus, Node: RootID, Body: readBody(0, off, 200)})
		if e != 0 {
			t.Fatalf("readdirplus: %v", e)
		}
		if len(out) == 0 {
			break
		}
		for len(out) > 0 {
			ent := out[entryOutSize:]
			nl := int(ne.Uint32(ent[16:]))
			got = append(got, fmt.Sprintf("%s:%d:%d", ent[direntBaseSize:direntBaseSize+nl], ne.Uint64(out[0:]), ne.Uint64(out[40+8:])))
			off = ne.Uint64(ent[8:])
			out = out[entryOutSize+(direntBaseSize+nl+7)&^7:]
		}
	}
	want := fmt.Sprintf(".:0:0 ..:0:0 meminfo:100:%d stat:101:%d", unrenderedSize, unrenderedSize)
	if strings.Join(got, " ") != want {
		t.Errorf("readdirplus (name:node:size): %q, want %q", got, want)
	}
}

// TestReaddirplusLooksUpOnlyWhatFits: an entry that does not fit in the
// reply is not looked up, so nothing is told of it (the size book would
// hold a size the kernel never got).
func TestReaddirplusLooksUpOnlyWhatFits(t *testing.T) {
	fs := &lookupCounter{treeFS: newTreeFS(map[string]func(int) ([]byte, error){"meminfo": static("xy"), "stat": static("y")})}
	s := NewServer(fs)
	size := 0
	for _, name := range []string{".", "..", "meminfo"} {
		size += entryOutSize + (direntBaseSize+len(name)+7)&^7
	}
	e, _ := call(t, s, request{Opcode: opReaddirplus, Node: RootID, Body: readBody(0, 0, uint32(size))})
	if e != 0 {
		t.Fatalf("readdirplus: %v", e)
	}
	if n := fs.lookups.Load(); n != 1 {
		t.Errorf("%d look-ups for a reply with room for meminfo only", n)
	}
}
