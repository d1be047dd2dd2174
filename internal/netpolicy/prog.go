package netpolicy

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Offsets in struct bpf_sock_addr, the context of the hooks.
const (
	offIP4  = 4  // user_ip4, network order
	offIP6  = 8  // user_ip6[4], network order
	offPort = 24 // user_port, network order in the low 16 bits
)

// Verdicts a cgroup sock_addr program returns: 0 refuses with EPERM.
const (
	verdictDeny  = 0
	verdictAllow = 1
)

// compile returns the program of hook for one address family: each rule
// of that hook becomes a block of loads and compares that falls through to
// the next rule on a mismatch and returns the rule's verdict on a match.
// In the IPv6 program an IPv4 rule also matches the IPv4-mapped address
// (::ffff:a.b.c.d), which an IPv6 socket can connect to; otherwise such a
// socket would pass by IPv4 rules.
func (p *Policy) compile(hook Hook, v6 bool) []insn {
	insns := []insn{movReg(r6, r1)}
	n := 0
	for _, r := range p.Rules {
		if r.Hook != hook || (!v6 && r.Prefix.IsValid() && r.Prefix.Addr().Is6()) {
			continue
		}
		next, match, spec := fmt.Sprintf("rule%d", n), fmt.Sprintf("match%d", n), fmt.Sprintf("spec%d", n)
		n++
		insns = append(insns, portCheck(r, next)...)
		if r.Prefix.IsValid() && hook == Connect {
			insns = append(insns, unspecifiedCheck(r.Prefix, v6, match, spec, next)...)
		}
		if r.Prefix.IsValid() {
			insns = append(insns, addrCheck(r.Prefix, v6, next)...)
		}
		insns = append(insns, movImm(r0, verdict(r.Allow)).at(match), exit())
		insns = append(insns, movImm(r0, 0).at(next))
	}
	return append(insns, movImm(r0, verdict(p.DefaultAllow)), exit())
}

// unspecifiedCheck makes a connect rule treat the unspecified address as
// the loopback, which it is to connect(2) and sendto(2) (BSD's
// convention: 0.0.0.0 and ::ffff:0.0.0.0 reach 127.0.0.1, :: reaches
// ::1); matched as written, a rule denying the loopback would let
// 0.0.0.0 through. It jumps to match when the address is the
// unspecified one of pfx's family and pfx holds that family's loopback,
// to next when it is and pfx does not, and otherwise goes on at spec,
// which labels the address check that follows; nothing when pfx holds
// both or neither.
func unspecifiedCheck(pfx netip.Prefix, v6 bool, match, spec, next string) []insn {
	unspec, matches, differs := unspecified(pfx)
	if !differs {
		return nil
	}
	target := next
	if matches {
		target = match
	}
	insns := addrCheck(netip.PrefixFrom(unspec, unspec.BitLen()), v6, spec)
	// r0 = 0; if w0 == 0 goto target: a jump always taken.
	insns = append(insns, movImm(r0, 0), jmpImm32(unix.BPF_JEQ, r0, 0, target))
	return append(insns, movImm(r0, 0).at(spec))
}

// unspecified is the unspecified address of pfx's family, whether pfx
// holds that family's loopback (and so must match it), and whether that
// differs from what pfx says of the unspecified address as written.
func unspecified(pfx netip.Prefix) (unspec netip.Addr, matches, differs bool) {
	unspec, lo := netip.IPv6Unspecified(), netip.IPv6Loopback()
	if pfx.Addr().Is4() {
		unspec, lo = netip.IPv4Unspecified(), netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	return unspec, pfx.Contains(lo), pfx.Contains(lo) != pfx.Contains(unspec)
}

// offProtocol is the offset of protocol in struct bpf_sock, the context
// of the socket-creation hook.
const offProtocol = 12

// unhooked are the IP protocols a process may open sockets of without
// privileges whose connects and sends the sock_addr hooks never see: the
// kernel runs connect4/6 for TCP (and MPTCP) and UDP, sendmsg4/6 for
// UDP only. A UDP-Lite socket connected to a denied address sends to it;
// an SCTP socket connects, or sends to an address, the same way.
var unhooked = []int32{unix.IPPROTO_UDPLITE, unix.IPPROTO_SCTP}

// sockCreate is the program of the socket-creation hook that refuses
// sockets of the unhooked protocols (the kernel has resolved protocol 0
// to the type's default by then).
func sockCreate() []insn {
	insns := []insn{loadWord(r2, r1, offProtocol)}
	for _, proto := range unhooked {
		insns = append(insns, jmpImm32(unix.BPF_JEQ, r2, proto, "deny"))
	}
	return append(insns, movImm(r0, verdictAllow), exit(), movImm(r0, verdictDeny).at("deny"), exit())
}

// has says whether p has a rule for hook.
func (p *Policy) has(hook Hook) bool {
	for _, r := range p.Rules {
		if r.Hook == hook {
			return true
		}
	}
	return false
}

func verdict(allow bool) int32 {
	if allow {
		return verdictAllow
	}
	return verdictDeny
}

// portCheck jumps to next unless the port is in r's range.
func portCheck(r Rule, next string) []insn {
	if r.PortLo == 0 {
		return nil
	}
	return []insn{
		loadWord(r2, r6, offPort),
		toBE16(r2),
		jmpImm32(unix.BPF_JLT, r2, int32(r.PortLo), next),
		jmpImm32(unix.BPF_JGT, r2, int32(r.PortHi), next),
	}
}

// addrCheck jumps to next unless the address is in pfx. The words are
// compared as loaded, in network order, against the prefix's bytes read
// the same way.
func addrCheck(pfx netip.Prefix, v6 bool, next string) []insn {
	var addr, mask [16]byte
	off := int16(offIP4)
	if v6 {
		off = offIP6
	}
	bits := pfx.Bits()
	if pfx.Addr().Is4() {
		a := pfx.Addr().As4()
		if v6 {
			// ::ffff:a.b.c.d; the first 96 bits must match exactly.
			copy(addr[10:12], []byte{0xff, 0xff})
			copy(addr[12:], a[:])
			bits += 96
		} else {
			copy(addr[:4], a[:])
		}
	} else {
		addr = pfx.Addr().As16()
	}
	for i := 0; i < bits; i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	words := 1
	if v6 {
		words = 4
	}
	var insns []insn
	for w := 0; w < words; w++ {
		m := binary.NativeEndian.Uint32(mask[4*w:])
		if m == 0 {
			continue
		}
		insns = append(insns, loadWord(r2, r6, off+int16(4*w)))
		if m != 0xffffffff {
			insns = append(insns, andImm32(r2, int32(m)))
		}
		insns = append(insns, jmpImm32(unix.BPF_JNE, r2, int32(binary.NativeEndian.Uint32(addr[4*w:])), next))
	}
	return insns
}
