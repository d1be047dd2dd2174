package netpolicy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf/asm"
)

// The oracle: the programs as lkc built them with cilium/ebpf's
// assembler before it had its own, which tests (only) still link.

func ciliumCompile(p *Policy, hook Hook, v6 bool, v6only *sockBit) asm.Instructions {
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	if v6only != nil {
		insns = append(insns, ciliumReadV6Only(asm.LoadMem(asm.R3, asm.R6, offSk, asm.DWord), *v6only)...)
	}
	n := 0
	for _, r := range p.Rules {
		if r.Hook != hook || (!v6 && r.Prefix.IsValid() && r.Prefix.Addr().Is6()) {
			continue
		}
		next, match, spec := fmt.Sprintf("rule%d", n), fmt.Sprintf("match%d", n), fmt.Sprintf("spec%d", n)
		n++
		if r.PortLo != 0 {
			insns = append(insns,
				asm.LoadMem(asm.R2, asm.R6, offPort, asm.Word),
				asm.HostTo(asm.BE, asm.R2, asm.Half),
				asm.JLT.Imm32(asm.R2, int32(r.PortLo), next),
				asm.JGT.Imm32(asm.R2, int32(r.PortHi), next))
		}
		insns = append(insns, ciliumUnspecifiedCheck(unspecified(r, hook, v6), v6, v6only != nil, match, spec, next)...)
		if r.Prefix.IsValid() {
			insns = append(insns, ciliumAddrCheck(r.Prefix, v6, next)...)
		}
		insns = append(insns, asm.Mov.Imm(asm.R0, verdict(r.Allow)).WithSymbol(match), asm.Return())
		insns = append(insns, asm.Mov.Imm(asm.R0, 0).WithSymbol(next))
	}
	return append(insns, asm.Mov.Imm(asm.R0, verdict(p.DefaultAllow)), asm.Return())
}

func ciliumUnspecifiedCheck(sp []special, v6, v6only bool, match, spec, next string) asm.Instructions {
	var insns asm.Instructions
	for i, s := range sp {
		target := next
		if s.matches {
			target = match
		}
		other := fmt.Sprintf("%s.%d", spec, i)
		insns = append(insns, ciliumAddrCheck(netip.PrefixFrom(s.addr, s.addr.BitLen()), v6, other)...)
		if s.dualStack && v6only {
			insns = append(insns, asm.JNE.Imm32(asm.R7, 0, next))
		}
		insns = append(insns, asm.Mov.Imm(asm.R0, 0), asm.JEq.Imm32(asm.R0, 0, target))
		insns = append(insns, asm.Mov.Imm(asm.R0, 0).WithSymbol(other))
	}
	return insns
}

func ciliumReadV6Only(loadSk asm.Instruction, bit sockBit) asm.Instructions {
	n := int32(bit.off) + 1
	buf := -(n + 7) / 8 * 8
	return asm.Instructions{
		asm.Mov.Imm(asm.R7, 0),
		loadSk,
		asm.Mov.Reg(asm.R1, asm.R10),
		asm.Add.Imm(asm.R1, buf),
		asm.Mov.Imm(asm.R2, n),
		asm.FnProbeReadKernel.Call(),
		asm.JNE.Imm32(asm.R0, 0, "v6only.unread"),
		asm.LoadMem(asm.R7, asm.R10, int16(buf)+bit.off, asm.Byte),
		asm.And.Imm32(asm.R7, int32(bit.mask)),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("v6only.unread"),
	}
}

func ciliumPostBind6(p *Policy, bit sockBit) asm.Instructions {
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	for w := int16(0); w < 4; w++ {
		insns = append(insns, asm.LoadMem(asm.R2, asm.R6, offSrcIP6+4*w, asm.Word), asm.JNE.Imm32(asm.R2, 0, "allow"))
	}
	insns = append(insns, ciliumReadV6Only(asm.Mov.Reg(asm.R3, asm.R6), bit)...)
	insns = append(insns, asm.JNE.Imm32(asm.R7, 0, "allow"))
	n := 0
	for _, r := range p.Rules {
		if r.Hook != Bind || !matchesDualStackAny(r) {
			continue
		}
		next := fmt.Sprintf("rule%d", n)
		n++
		if r.PortLo != 0 {
			insns = append(insns,
				asm.LoadMem(asm.R2, asm.R6, offSrcPort, asm.Word),
				asm.JLT.Imm32(asm.R2, int32(r.PortLo), next),
				asm.JGT.Imm32(asm.R2, int32(r.PortHi), next))
		}
		insns = append(insns, asm.Mov.Imm(asm.R0, verdict(r.Allow)), asm.Return(), asm.Mov.Imm(asm.R0, 0).WithSymbol(next))
	}
	return append(insns, asm.Mov.Imm(asm.R0, verdict(p.DefaultAllow)), asm.Return(),
		asm.Mov.Imm(asm.R0, verdictAllow).WithSymbol("allow"), asm.Return())
}

func ciliumAddrCheck(pfx netip.Prefix, v6 bool, next string) asm.Instructions {
	var insns asm.Instructions
	for _, w := range prefixWords(pfx, v6) {
		insns = append(insns, asm.LoadMem(asm.R2, asm.R6, w.off, asm.Word))
		if w.mask != 0xffffffff {
			insns = append(insns, asm.And.Imm32(asm.R2, int32(w.mask)))
		}
		insns = append(insns, asm.JNE.Imm32(asm.R2, int32(w.addr), next))
	}
	return insns
}

// ciliumBytes resolves the jumps of insns, as ebpf.NewProgram does, and
// marshals them.
func ciliumBytes(t *testing.T, insns asm.Instructions) []byte {
	t.Helper()
	offs, err := insns.SymbolOffsets()
	if err != nil {
		t.Fatal(err)
	}
	for i := range insns {
		if ref := insns[i].Reference(); ref != "" {
			insns[i].Offset = int16(offs[ref] - i - 1)
		}
	}
	var bo binary.ByteOrder = binary.BigEndian // cilium wants a named order
	if littleEndian {
		bo = binary.LittleEndian
	}
	var b bytes.Buffer
	if err := insns.Marshal(&b, bo); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestEncodingMatchesCilium: lkc's encoder gives, byte for byte, the
// programs cilium/ebpf's assembler gives, for every kind of rule.
func TestEncodingMatchesCilium(t *testing.T) {
	for _, v := range []string{
		"default deny",
		"deny connect any",
		"allow connect 10.1.2.3, deny connect 10.0.0.0/8 port 80-89, deny bind any port 22, allow bind ::1, deny connect fd00::/8 port 443, default deny",
		"deny connect 0.0.0.0/0 port 1-65535, allow connect 192.168.0.0/17, deny connect 2001:db8::/33 port 53, deny bind 255.255.255.255",
		"allow connect ::/0, deny connect ::ffff:0:0/96, deny bind 127.0.0.0/8 port 1-1023, allow bind fe80::1:2:3:4/127",
		"deny connect 127.0.0.0/8 port 81, allow connect 0.0.0.0/8, deny connect ::1, allow connect ::/128, deny bind 127.0.0.1, default deny",
		"deny bind 127.0.0.1 port 84, deny bind ::1 port 85, allow bind 10.0.0.0/8, deny bind 0.0.0.0/8, allow bind 0.0.0.0, deny bind ::/0 port 86, deny bind ::/64, default deny",
	} {
		p, err := Parse(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, hook := range []Hook{Connect, Bind} {
			for _, v6 := range []bool{false, true} {
				got, err := assemble(p.compile(hook, v6, nil))
				if err != nil {
					t.Fatal(err)
				}
				want := ciliumBytes(t, ciliumCompile(p, hook, v6, nil))
				if !bytes.Equal(got, want) {
					t.Errorf("%q hook %v v6 %v:\n got %x\nwant %x", v, hook, v6, got, want)
				}
			}
		}
		// The bind6 program reading IPV6_V6ONLY (at a made-up place),
		// and the post-bind one.
		bit := sockBit{off: 19, mask: 0x20}
		for name, c := range map[string][2][]byte{
			"bind6":      {mustAssemble(t, p.compile(Bind, true, &bit)), ciliumBytes(t, ciliumCompile(p, Bind, true, &bit))},
			"post_bind6": {mustAssemble(t, p.postBind6(bit)), ciliumBytes(t, ciliumPostBind6(p, bit))},
		} {
			if !bytes.Equal(c[0], c[1]) {
				t.Errorf("%q %s reading IPV6_V6ONLY:\n got %x\nwant %x", v, name, c[0], c[1])
			}
		}
	}
}

func mustAssemble(t *testing.T, insns []insn) []byte {
	t.Helper()
	b, err := assemble(insns)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSockCreateMatchesCilium: the socket-creation program too.
func TestSockCreateMatchesCilium(t *testing.T) {
	want := asm.Instructions{asm.LoadMem(asm.R2, asm.R1, offProtocol, asm.Word)}
	for _, proto := range unhooked {
		want = append(want, asm.JEq.Imm32(asm.R2, proto, "deny"))
	}
	want = append(want, asm.Mov.Imm(asm.R0, verdictAllow), asm.Return(),
		asm.Mov.Imm(asm.R0, verdictDeny).WithSymbol("deny"), asm.Return())
	got, err := assemble(sockCreate())
	if err != nil {
		t.Fatal(err)
	}
	if w := ciliumBytes(t, want); !bytes.Equal(got, w) {
		t.Errorf("got %x\nwant %x", got, w)
	}
}

// TestAsmUndefinedLabel: a jump to nowhere is an error, not a jump to
// the next instruction.
func TestAsmUndefinedLabel(t *testing.T) {
	if _, err := assemble([]insn{jmpImm32(0x50, r2, 1, "nowhere"), exit()}); err == nil {
		t.Error("no error")
	}
}

// TestAttrLayout pins the bpf_attr members to the offsets of
// include/uapi/linux/bpf.h.
func TestAttrLayout(t *testing.T) {
	var l progLoadAttr
	var a progAttachAttr
	for name, c := range map[string][2]uintptr{
		"insns":                {unsafe.Offsetof(l.insns), 8},
		"license":              {unsafe.Offsetof(l.license), 16},
		"log_level":            {unsafe.Offsetof(l.logLevel), 24},
		"log_buf":              {unsafe.Offsetof(l.logBuf), 32},
		"prog_name":            {unsafe.Offsetof(l.progName), 48},
		"expected_attach_type": {unsafe.Offsetof(l.expectedAttachType), 68},
		"sizeof load":          {unsafe.Sizeof(l), 72},
		"attach_type":          {unsafe.Offsetof(a.attachType), 8},
		"attach_flags":         {unsafe.Offsetof(a.attachFlags), 12},
		"sizeof attach":        {unsafe.Sizeof(a), 20},
	} {
		if c[0] != c[1] {
			t.Errorf("%s: %d, want %d", name, c[0], c[1])
		}
	}
}

func TestPrefixWords(t *testing.T) {
	word := func(b ...byte) uint32 { return binary.NativeEndian.Uint32(b) }
	ones := word(0xff, 0xff, 0xff, 0xff)
	for _, c := range []struct {
		pfx  string
		v6   bool
		want []addrWord
	}{
		{"10.1.0.0/16", false, []addrWord{{offIP4, word(0xff, 0xff, 0, 0), word(10, 1, 0, 0)}}},
		{"192.0.2.7/32", false, []addrWord{{offIP4, ones, word(192, 0, 2, 7)}}},
		{"0.0.0.0/0", false, nil},
		{"10.0.0.0/8", true, []addrWord{
			{offIP6, ones, 0}, {offIP6 + 4, ones, 0},
			{offIP6 + 8, ones, word(0, 0, 0xff, 0xff)},
			{offIP6 + 12, word(0xff, 0, 0, 0), word(10, 0, 0, 0)},
		}},
		{"fd00::/8", true, []addrWord{{offIP6, word(0xff, 0, 0, 0), word(0xfd, 0, 0, 0)}}},
		{"2001:db8::1/128", true, []addrWord{
			{offIP6, ones, word(0x20, 0x01, 0x0d, 0xb8)}, {offIP6 + 4, ones, 0},
			{offIP6 + 8, ones, 0}, {offIP6 + 12, ones, word(0, 0, 0, 1)},
		}},
	} {
		got := prefixWords(netip.MustParsePrefix(c.pfx), c.v6)
		if !slices.Equal(got, c.want) {
			t.Errorf("prefixWords(%s, v6 %v) = %+v, want %+v", c.pfx, c.v6, got, c.want)
		}
	}
}
