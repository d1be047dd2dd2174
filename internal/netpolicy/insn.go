package netpolicy

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// insn is one BPF instruction, 8 bytes as the kernel reads them (struct
// bpf_insn): code, the two registers in one byte, off, imm. A jump names
// the label it goes to in target until assemble resolves it into off.
type insn struct {
	code     uint8
	dst, src uint8
	off      int16
	imm      int32
	target   string // jumps: the label of the destination
	label    string // the label of this instruction, if a jump goes here
}

// The registers the programs use: r0 the verdict (and a call's result),
// r1 the context on entry, r1-r3 a call's arguments, r2 scratch, r6 the
// context kept and r7 the socket's IPV6_V6ONLY (r1-r5 are clobbered by
// calls), r10 the frame pointer.
const (
	r0  = 0
	r1  = 1
	r2  = 2
	r3  = 3
	r6  = 6
	r7  = 7
	r10 = 10
)

// movReg is r[dst] = r[src], 64 bits.
func movReg(dst, src uint8) insn {
	return insn{code: unix.BPF_ALU64 | unix.BPF_MOV | unix.BPF_X, dst: dst, src: src}
}

// movImm is r[dst] = imm, 64 bits (sign-extended).
func movImm(dst uint8, imm int32) insn {
	return insn{code: unix.BPF_ALU64 | unix.BPF_MOV | unix.BPF_K, dst: dst, imm: imm}
}

// loadWord is r[dst] = *(u32 *)(r[src] + off).
func loadWord(dst, src uint8, off int16) insn {
	return insn{code: unix.BPF_LDX | unix.BPF_MEM | unix.BPF_W, dst: dst, src: src, off: off}
}

// loadDouble is r[dst] = *(u64 *)(r[src] + off).
func loadDouble(dst, src uint8, off int16) insn {
	return insn{code: unix.BPF_LDX | unix.BPF_MEM | unix.BPF_DW, dst: dst, src: src, off: off}
}

// loadByte is r[dst] = *(u8 *)(r[src] + off).
func loadByte(dst, src uint8, off int16) insn {
	return insn{code: unix.BPF_LDX | unix.BPF_MEM | unix.BPF_B, dst: dst, src: src, off: off}
}

// addImm is r[dst] += imm, 64 bits.
func addImm(dst uint8, imm int32) insn {
	return insn{code: unix.BPF_ALU64 | unix.BPF_ADD | unix.BPF_K, dst: dst, imm: imm}
}

// call calls helper function fn (enum bpf_func_id): arguments in r1-r5,
// the result in r0.
func call(fn int32) insn {
	return insn{code: unix.BPF_JMP | unix.BPF_CALL, imm: fn}
}

// toBE16 turns the low 16 bits of r[dst] from host to network order
// (and clears the rest).
func toBE16(dst uint8) insn {
	return insn{code: unix.BPF_ALU | unix.BPF_END | unix.BPF_TO_BE, dst: dst, imm: 16}
}

// andImm32 is w[dst] &= imm, 32 bits.
func andImm32(dst uint8, imm int32) insn {
	return insn{code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, dst: dst, imm: imm}
}

// jmpImm32 jumps to target if w[dst] op imm (32-bit compare; op is
// unix.BPF_JNE, BPF_JLT (unsigned), BPF_JGT (unsigned), ...).
func jmpImm32(op uint8, dst uint8, imm int32, target string) insn {
	return insn{code: unix.BPF_JMP32 | op | unix.BPF_K, dst: dst, imm: imm, target: target}
}

// exit returns r0.
func exit() insn {
	return insn{code: unix.BPF_JMP | unix.BPF_EXIT}
}

// at labels ins as a jump destination.
func (ins insn) at(label string) insn {
	ins.label = label
	return ins
}

// littleEndian says whether the host is little-endian: the kernel reads
// the register byte in host bit-field order.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// assemble resolves the jumps of insns and returns them in the kernel's
// format. Every instruction is one slot: no 64-bit immediate loads.
func assemble(insns []insn) ([]byte, error) {
	labels := make(map[string]int)
	for i, ins := range insns {
		if ins.label != "" {
			labels[ins.label] = i
		}
	}
	out := make([]byte, 0, 8*len(insns))
	for i, ins := range insns {
		if ins.target != "" {
			to, ok := labels[ins.target]
			if !ok {
				return nil, fmt.Errorf("instruction %d: jump to undefined label %q", i, ins.target)
			}
			if d := to - i - 1; d < -32768 || d > 32767 {
				return nil, fmt.Errorf("instruction %d: jump to %q out of range", i, ins.target)
			}
			ins.off = int16(to - i - 1)
		}
		regs := ins.dst&0xf | ins.src<<4
		if !littleEndian {
			regs = ins.dst<<4 | ins.src&0xf
		}
		out = append(out, ins.code, regs)
		out = binary.NativeEndian.AppendUint16(out, uint16(ins.off))
		out = binary.NativeEndian.AppendUint32(out, uint32(ins.imm))
	}
	return out, nil
}
