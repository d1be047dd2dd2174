package cgroups

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// cgroup v2 has no devices files: the rules become a
// BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup, as runc and
// crun do it. The rule list is first reduced the way the v1 devices cgroup
// would keep it (a default and a set of exceptions), so a config behaves
// the same on both hierarchies; the program then tests the exceptions and
// falls back to the default.

// devKey names a class of devices: type 'c' or 'b', major and minor (-1
// is any).
type devKey struct {
	typ          rune
	major, minor int64
}

// devException is one exception to the default, with its BPF_DEVCG_ACC_*
// bits.
type devException struct {
	devKey
	access uint32
}

// devPolicy is what the v1 devices cgroup would hold after the rules: a
// default and the exceptions to it, in a stable order.
type devPolicy struct {
	defaultAllow bool
	exceptions   []devException
}

const accessAll = unix.BPF_DEVCG_ACC_MKNOD | unix.BPF_DEVCG_ACC_READ | unix.BPF_DEVCG_ACC_WRITE

// reduceDeviceRules applies the rules in order as the v1 devices cgroup
// does, starting, as runc's v2 emulator does, from "deny everything": an
// "a" rule resets to allow-all or deny-all; a rule against the default adds
// to an exception; a rule agreeing with it takes access away from the
// exception for exactly that device class. Taking access out of a wider
// (wildcard) exception is refused, as runc refuses it, since v1 would
// silently ignore it.
func reduceDeviceRules(rules []config.DeviceRule) (devPolicy, error) {
	allow := false
	exc := map[devKey]uint32{}
	for i, r := range rules {
		typ := r.Type
		if typ == 'u' {
			typ = 'c'
		}
		if typ == 'a' {
			allow, exc = r.Allow, map[devKey]uint32{}
			continue
		}
		if typ != 'c' && typ != 'b' {
			return devPolicy{}, fmt.Errorf("linux.resources.devices[%d]: unknown type %q", i, r.Type)
		}
		if r.Major > math.MaxInt32 || r.Minor > math.MaxInt32 {
			return devPolicy{}, fmt.Errorf("linux.resources.devices[%d]: device %s out of range", i, devNum(r.Major, r.Minor))
		}
		acc, err := devAccess(r.Access)
		if err != nil {
			return devPolicy{}, fmt.Errorf("linux.resources.devices[%d]: %w", i, err)
		}
		k := devKey{typ, max(r.Major, -1), max(r.Minor, -1)}
		if r.Allow != allow {
			exc[k] |= acc
			continue
		}
		if err := checkNoHole(exc, k, acc); err != nil {
			return devPolicy{}, fmt.Errorf("linux.resources.devices[%d]: %w", i, err)
		}
		if exc[k] &^= acc; exc[k] == 0 {
			delete(exc, k)
		}
	}
	p := devPolicy{defaultAllow: allow}
	for k, acc := range exc {
		p.exceptions = append(p.exceptions, devException{k, acc})
	}
	sort.Slice(p.exceptions, func(i, j int) bool {
		a, b := p.exceptions[i], p.exceptions[j]
		if a.typ != b.typ {
			return a.typ < b.typ
		}
		if a.major != b.major {
			return a.major < b.major
		}
		return a.minor < b.minor
	})
	return p, nil
}

// checkNoHole refuses to take access acc away from k when a wider exception
// grants some of it: the v1 cgroup cannot split a wildcard exception.
func checkNoHole(exc map[devKey]uint32, k devKey, acc uint32) error {
	wider := []devKey{{k.typ, -1, k.minor}, {k.typ, k.major, -1}, {k.typ, -1, -1}}
	for _, w := range wider {
		if w != k && exc[w]&acc != 0 {
			return fmt.Errorf("cannot punch a hole for %c %s in the wider rule %c %s",
				k.typ, devNum(k.major, k.minor), w.typ, devNum(w.major, w.minor))
		}
	}
	return nil
}

func devAccess(s string) (uint32, error) {
	var acc uint32
	for _, c := range s {
		switch c {
		case 'r':
			acc |= unix.BPF_DEVCG_ACC_READ
		case 'w':
			acc |= unix.BPF_DEVCG_ACC_WRITE
		case 'm':
			acc |= unix.BPF_DEVCG_ACC_MKNOD
		default:
			return 0, fmt.Errorf("access %q is not a combination of r, w, m", s)
		}
	}
	if acc == 0 {
		acc = accessAll
	}
	return acc, nil
}

// bpfInsn is one eBPF instruction (struct bpf_insn); regs holds dst_reg
// in its low nibble and src_reg in its high one.
type bpfInsn struct {
	code uint8
	regs uint8
	off  int16
	imm  int32
}

// Opcodes used by the device program (class | operation | source).
const (
	opLdxW   = unix.BPF_LDX | unix.BPF_MEM | unix.BPF_W
	opAnd32K = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	opRsh32K = unix.BPF_ALU | unix.BPF_RSH | unix.BPF_K
	opMov32K = unix.BPF_ALU | unix.BPF_MOV | unix.BPF_K
	opMov32X = unix.BPF_ALU | unix.BPF_MOV | unix.BPF_X
	opJneK   = unix.BPF_JMP | unix.BPF_JNE | unix.BPF_K
	opJneX   = unix.BPF_JMP | unix.BPF_JNE | unix.BPF_X
	opJeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	opExit   = unix.BPF_JMP | unix.BPF_EXIT
)

func insn(code uint8, dst, src uint8, off int16, imm int32) bpfInsn {
	return bpfInsn{code: code, regs: dst | src<<4, off: off, imm: imm}
}

// deviceProgram compiles p. Registers: r2 device type, r3 requested
// access, r4 major, r5 minor (from struct bpf_cgroup_dev_ctx at r1); r1 is
// then scratch. Each exception is a block that jumps to the next one on a
// mismatch and returns its verdict on a match; the last block returns the
// default.
func deviceProgram(p devPolicy) []bpfInsn {
	prog := []bpfInsn{
		insn(opLdxW, 2, 1, 0, 0), insn(opAnd32K, 2, 0, 0, 0xffff),
		insn(opLdxW, 3, 1, 0, 0), insn(opRsh32K, 3, 0, 0, 16),
		insn(opLdxW, 4, 1, 4, 0),
		insn(opLdxW, 5, 1, 8, 0),
	}
	for _, e := range p.exceptions {
		prog = append(prog, exceptionBlock(e, !p.defaultAllow)...)
	}
	return append(prog, insn(opMov32K, 0, 0, 0, verdict(p.defaultAllow)), insn(opExit, 0, 0, 0, 0))
}

// exceptionBlock matches e. An allow exception must cover every access
// requested (an open for reading and writing asks for both); a deny
// exception applies when it covers any of them, as in the v1 cgroup.
func exceptionBlock(e devException, allow bool) []bpfInsn {
	typ := int32(unix.BPF_DEVCG_DEV_CHAR)
	if e.typ == 'b' {
		typ = unix.BPF_DEVCG_DEV_BLOCK
	}
	// Jumps carry offset 0 here and are pointed past the block below.
	b := []bpfInsn{insn(opJneK, 2, 0, 0, typ)}
	if e.access != accessAll {
		b = append(b, insn(opMov32X, 1, 3, 0, 0), insn(opAnd32K, 1, 0, 0, int32(e.access)))
		if allow {
			b = append(b, insn(opJneX, 1, 3, 0, 0))
		} else {
			b = append(b, insn(opJeqK, 1, 0, 0, 0))
		}
	}
	if e.major >= 0 {
		b = append(b, insn(opJneK, 4, 0, 0, int32(e.major)))
	}
	if e.minor >= 0 {
		b = append(b, insn(opJneK, 5, 0, 0, int32(e.minor)))
	}
	b = append(b, insn(opMov32K, 0, 0, 0, verdict(allow)), insn(opExit, 0, 0, 0, 0))
	for i := range b {
		if b[i].code&0x07 == unix.BPF_JMP && b[i].code != opExit {
			b[i].off = int16(len(b) - i - 1)
		}
	}
	return b
}

func verdict(allow bool) int32 {
	if allow {
		return 1
	}
	return 0
}

// encode lays the program out as the kernel reads it.
func encode(prog []bpfInsn) []byte {
	out := make([]byte, 0, 8*len(prog))
	for _, in := range prog {
		out = append(out, in.code, in.regs)
		out = binary.LittleEndian.AppendUint16(out, uint16(in.off))
		out = binary.LittleEndian.AppendUint32(out, uint32(in.imm))
	}
	return out
}

// setDevices attaches the program for rules to dir. The program stays
// attached for the life of the cgroup; a later Set with rules attaches
// another one beside it (BPF_F_ALLOW_MULTI), and the kernel allows an access
// only when every program does, so an update can narrow access but not
// widen it.
func setDevices(dir string, rules []config.DeviceRule) error {
	p, err := reduceDeviceRules(rules)
	if err != nil {
		return err
	}
	if err := attachDeviceProgram(dir, encode(deviceProgram(p))); err != nil {
		return fmt.Errorf("linux.resources.devices: %w", err)
	}
	return nil
}
