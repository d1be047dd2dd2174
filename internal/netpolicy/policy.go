// Package netpolicy enforces the org.lkc.net-policy annotation: which
// addresses and ports a container's processes may connect (or send UDP)
// to and bind, checked by the kernel in cgroup BPF hooks (connect4/6,
// sendmsg4/6, bind4/6) attached to a cgroup v2 directory the container's
// processes sit in. A refusal is EPERM at once, and root in the container
// cannot lift it: detaching needs the program, which only CAP_SYS_ADMIN
// (or CAP_BPF) in the host's namespace can get.
//
// The rules are compiled to straight-line BPF, one program per hook and
// address family, with no maps: the policy is fixed at create.
package netpolicy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Annotation holds a container's policy (docs/network.md).
const Annotation = "org.lkc.net-policy"

// Hook is what a rule checks.
type Hook int

const (
	Connect Hook = iota // connect(2), and sendto(2)/sendmsg(2) of UDP
	Bind                // bind(2)
)

// Rule allows or denies one hook to an address prefix and port range.
type Rule struct {
	Allow bool
	Hook  Hook
	// Prefix is the address range; the zero value matches any address of
	// either family.
	Prefix netip.Prefix
	// PortLo and PortHi bound the port (inclusive); 0, 0 matches any.
	PortLo, PortHi uint16
}

// Policy is the rules, first match wins, and what happens when none
// matches.
type Policy struct {
	Rules        []Rule
	DefaultAllow bool
}

// Parse reads the annotation's value: rules separated by commas, each
// "allow|deny connect|bind any|ADDR[/LEN] [port P[-Q]]", and at most one
// "default allow|deny" (allow when left out).
func Parse(s string) (*Policy, error) {
	p := &Policy{DefaultAllow: true}
	seenDefault := false
	for _, part := range strings.Split(s, ",") {
		f := strings.Fields(part)
		if len(f) == 0 {
			return nil, fmt.Errorf("annotation %s: empty rule in %q", Annotation, s)
		}
		if f[0] == "default" {
			if len(f) != 2 || (f[1] != "allow" && f[1] != "deny") || seenDefault {
				return nil, fmt.Errorf("annotation %s: %q: use one \"default allow\" or \"default deny\"", Annotation, strings.TrimSpace(part))
			}
			p.DefaultAllow, seenDefault = f[1] == "allow", true
			continue
		}
		r, err := parseRule(f)
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %q: %w", Annotation, strings.TrimSpace(part), err)
		}
		p.Rules = append(p.Rules, r)
	}
	return p, nil
}

const ruleSyntax = "use allow|deny connect|bind any|ADDR[/LEN] [port P[-Q]]"

func parseRule(f []string) (Rule, error) {
	var r Rule
	if len(f) != 3 && len(f) != 5 {
		return r, fmt.Errorf("%s", ruleSyntax)
	}
	switch f[0] {
	case "allow":
		r.Allow = true
	case "deny":
	default:
		return r, fmt.Errorf("%q is not allow or deny", f[0])
	}
	switch f[1] {
	case "connect":
		r.Hook = Connect
	case "bind":
		r.Hook = Bind
	default:
		return r, fmt.Errorf("%q is not connect or bind", f[1])
	}
	if f[2] != "any" {
		pfx, err := parsePrefix(f[2])
		if err != nil {
			return r, err
		}
		r.Prefix = pfx
	}
	if len(f) == 5 {
		if f[3] != "port" {
			return r, fmt.Errorf("%s", ruleSyntax)
		}
		lo, hi, err := parsePorts(f[4])
		if err != nil {
			return r, err
		}
		r.PortLo, r.PortHi = lo, hi
	}
	return r, nil
}

// parsePrefix reads an address or a prefix; an address alone is a host.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("%q is not an address prefix", s)
		}
		return unmap(p.Masked()), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an address", s)
	}
	return unmap(netip.PrefixFrom(a, a.BitLen())), nil
}

// unmap turns a prefix of IPv4-mapped addresses (::ffff:a.b.c.d/96 and
// longer) into the IPv4 prefix: an IPv4 socket reaches those addresses
// through the IPv4 programs, which IPv6 rules are not compiled into, and
// the IPv6 program matches IPv4 rules on the mapped form anyway.
func unmap(p netip.Prefix) netip.Prefix {
	if !p.Addr().Is4In6() || p.Bits() < 96 {
		return p
	}
	return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
}

func parsePorts(s string) (uint16, uint16, error) {
	los, his, isRange := strings.Cut(s, "-")
	lo, err := strconv.ParseUint(los, 10, 16)
	hi := lo
	if err == nil && isRange {
		hi, err = strconv.ParseUint(his, 10, 16)
	}
	if err != nil || lo == 0 || hi < lo {
		return 0, 0, fmt.Errorf("port %q: use a port 1-65535 or a range P-Q", s)
	}
	return uint16(lo), uint16(hi), nil
}
