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
	offSk   = 64 // sk, the struct bpf_sock pointer (the socket)
)

// Offsets in struct bpf_sock, the context of the post-bind hook, which is
// the socket itself (struct sock) to the kernel.
const (
	offSrcIP6  = 28 // src_ip6[4], network order
	offSrcPort = 44 // src_port, host order
)

// helperProbeReadKernel is bpf_probe_read_kernel (enum bpf_func_id).
const helperProbeReadKernel = 113

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
// socket would pass by IPv4 rules. The unspecified addresses a rule
// decides other than as written (unspecified) are checked before its
// prefix. With v6only, where the socket keeps IPV6_V6ONLY (bind6 only),
// the program reads it first: an IPv4 deny rule matches :: only on a
// socket without it (see unspecified); without, on every socket.
func (p *Policy) compile(hook Hook, v6 bool, v6only *sockBit) []insn {
	insns := []insn{movReg(r6, r1)}
	if v6only != nil {
		insns = append(insns, readV6Only(loadDouble(r3, r6, offSk), *v6only)...)
	}
	n := 0
	for _, r := range p.Rules {
		if r.Hook != hook || (!v6 && r.Prefix.IsValid() && r.Prefix.Addr().Is6()) {
			continue
		}
		next, match, spec := fmt.Sprintf("rule%d", n), fmt.Sprintf("match%d", n), fmt.Sprintf("spec%d", n)
		n++
		insns = append(insns, portCheck(r, next)...)
		insns = append(insns, unspecifiedCheck(unspecified(r, hook, v6), v6, v6only != nil, match, spec, next)...)
		if r.Prefix.IsValid() {
			insns = append(insns, addrCheck(r.Prefix, v6, next)...)
		}
		insns = append(insns, movImm(r0, verdict(r.Allow)).at(match), exit())
		insns = append(insns, movImm(r0, 0).at(next))
	}
	return append(insns, movImm(r0, verdict(p.DefaultAllow)), exit())
}

// unspecifiedCheck decides each of sp before the address check that
// follows: when the address is sp[i].addr it jumps to match if the rule
// matches it, to next if not; otherwise it goes on at spec.i, the
// label of what follows the check. With v6only (r7 holds the socket's
// IPV6_V6ONLY), a dual-stack special goes to next on a v6-only socket.
func unspecifiedCheck(sp []special, v6, v6only bool, match, spec, next string) []insn {
	var insns []insn
	for i, s := range sp {
		target := next
		if s.matches {
			target = match
		}
		other := fmt.Sprintf("%s.%d", spec, i)
		insns = append(insns, addrCheck(netip.PrefixFrom(s.addr, s.addr.BitLen()), v6, other)...)
		if s.dualStack && v6only {
			insns = append(insns, jmpImm32(unix.BPF_JNE, r7, 0, next))
		}
		// r0 = 0; if w0 == 0 goto target: a jump always taken.
		insns = append(insns, movImm(r0, 0), jmpImm32(unix.BPF_JEQ, r0, 0, target))
		insns = append(insns, movImm(r0, 0).at(other))
	}
	return insns
}

// special is an unspecified address a rule decides other than as its
// prefix says of the address as written: an IPv4 one is compared as
// ::ffff:0.0.0.0 in the IPv6 program, as addrCheck does. A dualStack
// one matches only a socket that is not IPV6_V6ONLY, when the program
// can read that.
type special struct {
	addr      netip.Addr
	matches   bool
	dualStack bool
}

// unspecified is what r decides other than as written of the
// unspecified addresses (0.0.0.0, ::ffff:0.0.0.0, ::) in the program of
// hook for one family.
//
// connect(2) and sendto(2) send to the loopback (BSD's convention:
// 0.0.0.0 and ::ffff:0.0.0.0 reach 127.0.0.1, :: reaches ::1), so a
// connect rule decides its family's unspecified address as it does the
// loopback; matched as written, a rule denying the loopback would let
// 0.0.0.0 through.
//
// bind(2) to one listens on every local address of its family, so a
// deny bind rule matches its family's unspecified address whatever
// local addresses its prefix holds (which ones the container has is not
// known, and changes); an allow bind rule matches it only as written
// (any, 0.0.0.0/0, ::/0, or a prefix holding it), so the rules after it
// still see the wildcard. On an IPv6 socket, :: also listens on every
// IPv4 address unless the socket is IPV6_V6ONLY: an IPv4 deny bind rule
// matches :: too, on a socket without it (dualStack).
func unspecified(r Rule, hook Hook, v6 bool) []special {
	pfx := r.Prefix
	if !pfx.IsValid() {
		return nil
	}
	unspec, lo := netip.IPv6Unspecified(), netip.IPv6Loopback()
	if pfx.Addr().Is4() {
		unspec, lo = netip.IPv4Unspecified(), netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	var sp []special
	switch {
	case hook == Connect:
		if pfx.Contains(lo) != pfx.Contains(unspec) {
			sp = append(sp, special{addr: unspec, matches: pfx.Contains(lo)})
		}
	case !r.Allow:
		if !pfx.Contains(unspec) {
			sp = append(sp, special{addr: unspec, matches: true})
		}
		if v6 && pfx.Addr().Is4() {
			sp = append(sp, special{addr: netip.IPv6Unspecified(), matches: true, dualStack: true})
		}
	}
	return sp
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
	return append([]insn{loadWord(r2, r6, offPort), toBE16(r2)}, portRange(r, next)...)
}

// portRange jumps to next unless w2, a port in host order, is in r's
// range.
func portRange(r Rule, next string) []insn {
	return []insn{
		jmpImm32(unix.BPF_JLT, r2, int32(r.PortLo), next),
		jmpImm32(unix.BPF_JGT, r2, int32(r.PortHi), next),
	}
}

// addrCheck jumps to next unless the address is in pfx. The words are
// compared as loaded, in network order, against the prefix's bytes read
// the same way.
func addrCheck(pfx netip.Prefix, v6 bool, next string) []insn {
	var insns []insn
	for _, w := range prefixWords(pfx, v6) {
		insns = append(insns, loadWord(r2, r6, w.off))
		if w.mask != 0xffffffff {
			insns = append(insns, andImm32(r2, int32(w.mask)))
		}
		insns = append(insns, jmpImm32(unix.BPF_JNE, r2, int32(w.addr), next))
	}
	return insns
}

// addrWord is one 32-bit word of the context's address that a prefix
// constrains: at offset off, masked by mask, it must equal addr.
type addrWord struct {
	off        int16
	mask, addr uint32
}

// prefixWords lists the words of the context's IPv4 (or, with v6, IPv6)
// address that pfx constrains, in order, as loaded: native-endian words
// of the network-order bytes. An IPv4 prefix on an IPv6 hook matches its
// mapped address ::ffff:a.b.c.d, whose first 96 bits must match exactly.
func prefixWords(pfx netip.Prefix, v6 bool) []addrWord {
	var addr, mask [16]byte
	off := int16(offIP4)
	if v6 {
		off = offIP6
	}
	bits := pfx.Bits()
	if pfx.Addr().Is4() {
		a := pfx.Addr().As4()
		if v6 {
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
	var out []addrWord
	for w := 0; w < words; w++ {
		m := binary.NativeEndian.Uint32(mask[4*w:])
		if m == 0 {
			continue
		}
		out = append(out, addrWord{off: off + int16(4*w), mask: m, addr: binary.NativeEndian.Uint32(addr[4*w:])})
	}
	return out
}

// readV6Only sets r7 to the socket's IPV6_V6ONLY bit (non-zero when set)
// at bit, once loadSk has put the socket (struct sock) in r3. The
// verifier allows no pointer arithmetic on a socket, so
// bpf_probe_read_kernel copies the struct's first bytes, up to the
// bit's, to the stack. A read that fails leaves r7 0: the socket is
// taken as dual-stack, as a program that cannot read the bit takes it.
func readV6Only(loadSk insn, bit sockBit) []insn {
	n := int32(bit.off) + 1
	buf := -(n + 7) / 8 * 8
	return []insn{
		movImm(r7, 0),
		loadSk,
		movReg(r1, r10),
		addImm(r1, buf),
		movImm(r2, n),
		call(helperProbeReadKernel),
		jmpImm32(unix.BPF_JNE, r0, 0, "v6only.unread"),
		loadByte(r7, r10, int16(buf)+bit.off),
		andImm32(r7, int32(bit.mask)),
		movImm(r0, 0).at("v6only.unread"),
	}
}

// v6onlyMatters says whether a bind6 verdict of p hangs on the socket's
// IPV6_V6ONLY: whether p has an IPv4 deny bind rule.
func (p *Policy) v6onlyMatters() bool {
	for _, r := range p.Rules {
		if r.Hook != Bind {
			continue
		}
		for _, s := range unspecified(r, Bind, true) {
			if s.dualStack {
				return true
			}
		}
	}
	return false
}

// postBind6 is the program of the post-bind hook for IPv6 sockets, which
// the kernel runs once the socket is bound, under its lock, and which
// fails the bind when it refuses. The bind6 program runs before: the
// socket is unlocked between the two, and another thread can clear
// IPV6_V6ONLY there (once bound, it cannot). So this one judges a
// socket bound to :: that is dual-stack by then as bind6 judges such a
// bind, with the port it was given, and lets every other bind be. The
// address is known, so which rules match it is decided here, not in
// the program: what is left is their ports.
func (p *Policy) postBind6(bit sockBit) []insn {
	insns := []insn{movReg(r6, r1)}
	for w := int16(0); w < 4; w++ {
		insns = append(insns, loadWord(r2, r6, offSrcIP6+4*w), jmpImm32(unix.BPF_JNE, r2, 0, "allow"))
	}
	insns = append(insns, readV6Only(movReg(r3, r6), bit)...)
	insns = append(insns, jmpImm32(unix.BPF_JNE, r7, 0, "allow"))
	n := 0
	for _, r := range p.Rules {
		if r.Hook != Bind || !matchesDualStackAny(r) {
			continue
		}
		next := fmt.Sprintf("rule%d", n)
		n++
		if r.PortLo != 0 {
			insns = append(insns, loadWord(r2, r6, offSrcPort))
			insns = append(insns, portRange(r, next)...)
		}
		insns = append(insns, movImm(r0, verdict(r.Allow)), exit(), movImm(r0, 0).at(next))
	}
	return append(insns, movImm(r0, verdict(p.DefaultAllow)), exit(), movImm(r0, verdictAllow).at("allow"), exit())
}

// matchesDualStackAny says whether bind rule r matches :: on a
// dual-stack socket in the bind6 program: its specials first, then its
// prefix.
func matchesDualStackAny(r Rule) bool {
	any6 := netip.IPv6Unspecified()
	for _, s := range unspecified(r, Bind, true) {
		if s.addr == any6 {
			return s.matches
		}
	}
	return !r.Prefix.IsValid() || r.Prefix.Contains(any6)
}
