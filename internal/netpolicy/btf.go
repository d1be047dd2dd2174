package netpolicy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
)

// vmlinuxBTF is the running kernel's BTF (the types of its structures),
// where the place of IPV6_V6ONLY in a socket is read.
var vmlinuxBTF = "/sys/kernel/btf/vmlinux"

// sockBit is a one-bit field of struct sock: the byte at off from its
// start, under mask.
type sockBit struct {
	off  int16
	mask uint8
}

// v6onlyBit is where the running kernel keeps a socket's IPV6_V6ONLY:
// skc_ipv6only, a bit field of struct sock_common, which struct sock
// begins with. The bind hook's context does not carry it, and
// bpf_getsockopt does not give it, so the programs read it from the
// socket itself.
var v6onlyBit = sync.OnceValues(func() (sockBit, error) {
	b, err := os.ReadFile(vmlinuxBTF)
	if err != nil {
		return sockBit{}, err
	}
	bit, err := findBitfield(b, "sock_common", "skc_ipv6only")
	if err != nil {
		return sockBit{}, fmt.Errorf("%s: %w", vmlinuxBTF, err)
	}
	return bit, nil
})

// BTF kinds (include/uapi/linux/btf.h) and the bytes each type's record
// has after its 12-byte struct btf_type.
const (
	btfKindInt     = 1
	btfKindArray   = 3
	btfKindStruct  = 4
	btfKindUnion   = 5
	btfKindEnum    = 6
	btfKindFuncP   = 13
	btfKindVar     = 14
	btfKindDatasec = 15
	btfKindDeclTag = 17
	btfKindEnum64  = 19 // the last kind
)

func btfTail(kind uint32, vlen int) (int, error) {
	switch kind {
	case btfKindInt, btfKindVar, btfKindDeclTag:
		return 4, nil
	case btfKindArray:
		return 12, nil
	case btfKindStruct, btfKindUnion, btfKindDatasec, btfKindEnum64:
		return 12 * vlen, nil
	case btfKindEnum, btfKindFuncP:
		return 8 * vlen, nil
	}
	if kind == 0 || kind > btfKindEnum64 {
		return 0, fmt.Errorf("type kind %d unknown", kind)
	}
	return 0, nil
}

// findBitfield finds member, a one-bit field, of the struct named
// structName in the BTF blob b.
func findBitfield(b []byte, structName, member string) (sockBit, error) {
	var bo binary.ByteOrder = binary.LittleEndian
	if len(b) < 24 {
		return sockBit{}, errors.New("too short for a BTF header")
	}
	if bo.Uint16(b) != 0xeb9f {
		if bo = binary.BigEndian; bo.Uint16(b) != 0xeb9f {
			return sockBit{}, errors.New("not BTF (bad magic)")
		}
	}
	hdr := uint64(bo.Uint32(b[4:]))
	section := func(at int) ([]byte, error) {
		off, n := hdr+uint64(bo.Uint32(b[at:])), uint64(bo.Uint32(b[at+4:]))
		if off+n > uint64(len(b)) {
			return nil, errors.New("a section runs past the end")
		}
		return b[off : off+n], nil
	}
	types, err := section(8)
	if err != nil {
		return sockBit{}, err
	}
	strs, err := section(16)
	if err != nil {
		return sockBit{}, err
	}
	name := func(off uint32) string {
		if int(off) >= len(strs) {
			return ""
		}
		s := strs[off:]
		if i := bytes.IndexByte(s, 0); i >= 0 {
			s = s[:i]
		}
		return string(s)
	}
	for i := 0; i+12 <= len(types); {
		nameOff, info := bo.Uint32(types[i:]), bo.Uint32(types[i+4:])
		kind, vlen, kflag := info>>24&0x1f, int(info&0xffff), info>>31 == 1
		i += 12
		tail, err := btfTail(kind, vlen)
		if err != nil {
			return sockBit{}, err
		}
		if i+tail > len(types) {
			return sockBit{}, errors.New("a type runs past the end")
		}
		if kind == btfKindStruct && name(nameOff) == structName {
			for m := i; m < i+tail; m += 12 {
				if name(bo.Uint32(types[m:])) != member {
					continue
				}
				return bitOf(bo.Uint32(types[m+8:]), kflag, bo)
			}
			return sockBit{}, fmt.Errorf("struct %s has no %s", structName, member)
		}
		i += tail
	}
	return sockBit{}, fmt.Errorf("no struct %s", structName)
}

// bitOf reads a member's offset (with kflag, a bit field's size in the
// top byte and its bit offset below); bits are numbered from the low bit
// of each byte on a little-endian kernel, from the high bit on a
// big-endian one.
func bitOf(offset uint32, kflag bool, bo binary.ByteOrder) (sockBit, error) {
	size := uint32(0)
	if kflag {
		size, offset = offset>>24, offset&0xffffff
	}
	if size != 1 {
		return sockBit{}, fmt.Errorf("not a one-bit field (%d bits)", size)
	}
	if offset/8 > 255 {
		return sockBit{}, fmt.Errorf("at byte %d, beyond what the programs read", offset/8)
	}
	mask := uint8(1) << (offset % 8)
	if bo == binary.BigEndian {
		mask = 0x80 >> (offset % 8)
	}
	return sockBit{off: int16(offset / 8), mask: mask}, nil
}
