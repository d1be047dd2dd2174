package network

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Request is what a container's annotations ask of its networking.
type Request struct {
	// Networks are the names of the configurations to attach, in order:
	// the first gets eth0, the next eth1.
	Networks []string
	// Ports are published through the first network whose configuration
	// has a plugin with the portMappings capability (portmap).
	Ports []Port
	// Rate is applied by the first network with the bandwidth capability;
	// zero fields leave that direction unlimited.
	Rate Rate
	// Sysctls are the config's net.* sysctls, which the container's
	// namespace gets after ADD: those that disable IPv6 on an interface
	// decide which ports it can publish (publishable).
	Sysctls map[string]string
}

// Port is one published port, in the shape of portmap's portMappings.
type Port struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// Rate is a limit in bits per second in each direction as the container
// sees it: Egress is what it sends, Ingress what it receives.
type Rate struct {
	Egress  uint64 `json:"egress,omitempty"`
	Ingress uint64 `json:"ingress,omitempty"`
}

// String gives r in the annotation's form, "none" when it limits nothing.
func (r Rate) String() string {
	var parts []string
	if r.Egress > 0 {
		parts = append(parts, fmt.Sprintf("egress=%dbit", r.Egress))
	}
	if r.Ingress > 0 {
		parts = append(parts, fmt.Sprintf("ingress=%dbit", r.Ingress))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// Any tells whether r limits either direction.
func (r Rate) Any() bool { return r.Egress > 0 || r.Ingress > 0 }

// FromAnnotations reads a container's request. It returns nil without
// error when the container asks for no network; ports or a rate without a
// network are an error, as they could not be honoured.
func FromAnnotations(a map[string]string) (*Request, error) {
	nets, ok := a[AnnotationNetwork]
	if !ok {
		for _, k := range []string{AnnotationPorts, AnnotationRate} {
			if _, ok := a[k]; ok {
				return nil, fmt.Errorf("annotation %s needs %s naming a network", k, AnnotationNetwork)
			}
		}
		return nil, nil
	}
	r := &Request{}
	var err error
	if r.Networks, err = ParseNetworks(nets); err != nil {
		return nil, err
	}
	if v, ok := a[AnnotationPorts]; ok {
		if r.Ports, err = ParsePorts(v); err != nil {
			return nil, err
		}
	}
	if v, ok := a[AnnotationRate]; ok {
		if r.Rate, err = ParseRate(v); err != nil {
			return nil, fmt.Errorf("annotation %s: %w", AnnotationRate, err)
		}
	}
	return r, nil
}

// ParseNetworks reads NAME[,NAME2...]: each a CNI network name, once.
func ParseNetworks(v string) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	for _, n := range strings.Split(v, ",") {
		n = strings.TrimSpace(n)
		if !validName(n) {
			return nil, fmt.Errorf("annotation %s: network name %q: use letters, digits, '_', '-' and '.'", AnnotationNetwork, n)
		}
		if seen[n] {
			return nil, fmt.Errorf("annotation %s: network %q is named twice", AnnotationNetwork, n)
		}
		seen[n] = true
		names = append(names, n)
	}
	return names, nil
}

// validName follows CNI's rule for network names.
func validName(n string) bool {
	if n == "" || n == "." || n == ".." {
		return false
	}
	for _, c := range n {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// ParsePorts reads [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp|/sctp],...
// (an IPv6 host address in brackets); the protocol defaults to tcp.
func ParsePorts(v string) ([]Port, error) {
	var ports []Port
	for _, s := range strings.Split(v, ",") {
		p, err := parsePort(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %q: %w", AnnotationPorts, s, err)
		}
		for _, q := range ports {
			if q.HostPort == p.HostPort && q.Protocol == p.Protocol && hostsOverlap(q.HostIP, p.HostIP) {
				return nil, fmt.Errorf("annotation %s: host port %d/%s is published twice", AnnotationPorts, p.HostPort, p.Protocol)
			}
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// hostsOverlap says whether two host addresses of a port share an
// address, as portmap reads them: none is every address, 0.0.0.0 every
// IPv4 one and :: every IPv6 one. Spelt differently (80:80 and
// 0.0.0.0:80:80), the same port would otherwise reach portmap twice.
func hostsOverlap(a, b string) bool {
	if a == "" || b == "" {
		return true
	}
	x, y := netip.MustParseAddr(a).Unmap(), netip.MustParseAddr(b).Unmap()
	if x.Is4() != y.Is4() {
		return false
	}
	return x == y || x.IsUnspecified() || y.IsUnspecified()
}

func parsePort(s string) (Port, error) {
	p := Port{Protocol: "tcp"}
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		p.Protocol = strings.ToLower(s[i+1:])
		s = s[:i]
		if p.Protocol != "tcp" && p.Protocol != "udp" && p.Protocol != "sctp" {
			return p, fmt.Errorf("protocol %q: use tcp, udp or sctp", p.Protocol)
		}
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return p, fmt.Errorf("use [HOSTIP:]HOSTPORT:CONTAINERPORT[/PROTOCOL]")
	}
	var err error
	if p.ContainerPort, err = portNumber(s[i+1:]); err != nil {
		return p, fmt.Errorf("container port: %w", err)
	}
	s = s[:i]
	if j := strings.LastIndexByte(s, ':'); j >= 0 {
		addr, err := netip.ParseAddr(strings.Trim(s[:j], "[]"))
		if err != nil || addr.Zone() != "" {
			return p, fmt.Errorf("host address %q is not an IP address", s[:j])
		}
		// portmap tells the families by the address's form.
		p.HostIP, s = addr.Unmap().String(), s[j+1:]
	}
	if p.HostPort, err = portNumber(s); err != nil {
		return p, fmt.Errorf("host port: %w", err)
	}
	return p, nil
}

func portNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number from 1 to 65535", s)
	}
	return n, nil
}

// rateUnits are tc's rate units in bits per second (its kbps, with an s,
// is bytes; lkc takes only the unambiguous bit forms).
var rateUnits = []struct {
	suffix string
	mult   uint64
}{{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}}

// ParseRate reads egress=RATE,ingress=RATE with tc's bit units (10mbit);
// a direction left out or given as none is unlimited, and "none" limits
// neither.
func ParseRate(v string) (Rate, error) {
	c, err := ParseRateChange(v)
	return c.Rate, err
}

// RateChange is a change of a container's limit (`update --net-rate`):
// the directions it names get Rate's value, 0 for none; the others keep
// theirs.
type RateChange struct {
	Rate            Rate
	Egress, Ingress bool // named
}

// Apply gives the limit cur becomes.
func (c RateChange) Apply(cur Rate) Rate {
	if c.Egress {
		cur.Egress = c.Rate.Egress
	}
	if c.Ingress {
		cur.Ingress = c.Rate.Ingress
	}
	return cur
}

// ParseRateChange reads the annotation's form as a change: "none" names
// both directions, DIRECTION=none one of them.
func ParseRateChange(v string) (RateChange, error) {
	var c RateChange
	if v == "none" {
		c.Egress, c.Ingress = true, true
		return c, nil
	}
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		named := map[string]*bool{"egress": &c.Egress, "ingress": &c.Ingress}[k]
		if !ok || named == nil {
			return c, fmt.Errorf("%q: use egress=RATE,ingress=RATE (RATE like 10mbit, or none)", kv)
		}
		if *named {
			return c, fmt.Errorf("%s is given twice", k)
		}
		*named = true
		if val == "none" {
			continue
		}
		n, err := parseBits(val)
		if err != nil {
			return c, fmt.Errorf("%s: %w", k, err)
		}
		if k == "egress" {
			c.Rate.Egress = n
		} else {
			c.Rate.Ingress = n
		}
	}
	return c, nil
}

// maxRate is the fastest limit the bandwidth plugin takes: it refuses a
// bucket of 4 GiB or more, and bandwidthBurst gives 50 ms of the rate.
const maxRate = 640e9

func parseBits(s string) (uint64, error) {
	l := strings.ToLower(s)
	mult := uint64(1)
	for _, u := range rateUnits {
		if strings.HasSuffix(l, u.suffix) {
			l, mult = strings.TrimSuffix(l, u.suffix), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(l, 64)
	bits := f * float64(mult)
	// Written as "not in range" so that NaN, which every comparison
	// fails, is refused too.
	if err != nil || !(bits >= 8000 && bits <= maxRate) {
		return 0, fmt.Errorf("rate %q: use a number with bit, kbit, mbit, gbit or tbit, from 8kbit to 640gbit", s)
	}
	return uint64(bits), nil
}
