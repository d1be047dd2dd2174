package network

import (
	"reflect"
	"strings"
	"testing"
)

func TestFromAnnotations(t *testing.T) {
	r, err := FromAnnotations(map[string]string{"other": "x"})
	if r != nil || err != nil {
		t.Fatalf("no network annotation: got %v, %v; want nil, nil", r, err)
	}
	r, err = FromAnnotations(map[string]string{
		AnnotationNetwork: "lkc, second",
		AnnotationPorts:   "8080:80/tcp,127.0.0.1:5353:53/udp,[::1]:8443:443,[::ffff:10.1.2.3]:8444:443",
		AnnotationRate:    "egress=10mbit,ingress=1.5gbit",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &Request{
		Networks: []string{"lkc", "second"},
		Ports: []Port{
			{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
			{HostPort: 5353, ContainerPort: 53, Protocol: "udp", HostIP: "127.0.0.1"},
			{HostPort: 8443, ContainerPort: 443, Protocol: "tcp", HostIP: "::1"},
			{HostPort: 8444, ContainerPort: 443, Protocol: "tcp", HostIP: "10.1.2.3"},
		},
		Rate: Rate{Egress: 10e6, Ingress: 1.5e9},
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("got %+v, want %+v", r, want)
	}
}

// TestBadAnnotations checks that each bad value is refused with one line
// that names the annotation and what is wrong with it.
func TestBadAnnotations(t *testing.T) {
	for _, c := range []struct {
		name string
		a    map[string]string
		want string
	}{
		{"PortsWithoutNetwork", map[string]string{AnnotationPorts: "80:80"}, "org.lkc.ports needs org.lkc.network"},
		{"RateWithoutNetwork", map[string]string{AnnotationRate: "egress=1mbit"}, "org.lkc.net-rate needs org.lkc.network"},
		{"EmptyNetwork", map[string]string{AnnotationNetwork: ""}, `org.lkc.network: network name ""`},
		{"EmptyName", map[string]string{AnnotationNetwork: "a,,b"}, `org.lkc.network: network name ""`},
		{"SlashInName", map[string]string{AnnotationNetwork: "../etc"}, `network name "../etc"`},
		{"NamedTwice", map[string]string{AnnotationNetwork: "a,a"}, `network "a" is named twice`},
		{"PortNoColon", map[string]string{AnnotationNetwork: "a", AnnotationPorts: "8080"}, `org.lkc.ports: "8080": use \[HOSTIP:\]HOSTPORT`},
		{"PortZero", map[string]string{AnnotationNetwork: "a", AnnotationPorts: "0:80"}, `host port: "0" is not a port number`},
		{"PortTooBig", map[string]string{AnnotationNetwork: "a", AnnotationPorts: "80:70000"}, `container port: "70000" is not a port number`},
		{"PortProtocol", map[string]string{AnnotationNetwork: "a", AnnotationPorts: "80:80/icmp"}, `protocol "icmp"`},
		{"PortHostIP", map[string]string{AnnotationNetwork: "a", AnnotationPorts: "host:80:80"}, `host address "host" is not an IP address`},
		{"PortHostIPZone", map[string]string{AnnotationNetwork: "a", AnnotationPorts: "[fe80::1%eth0]:80:80"}, `host address "\[fe80::1%eth0\]" is not an IP address`},
		{"PortTwice", map[string]string{AnnotationNetwork: "a", AnnotationPorts: "80:80,80:81"}, `host port 80/tcp is published twice`},
		{"PortTwiceAnyV4", map[string]string{AnnotationNetwork: "a", AnnotationPorts: "0.0.0.0:80:80,80:81"}, `host port 80/tcp is published twice`},
		{"PortTwiceAnyV6", map[string]string{AnnotationNetwork: "a", AnnotationPorts: "80:80,[::]:80:81"}, `host port 80/tcp is published twice`},
		{"PortTwiceInAnyV4", map[string]string{AnnotationNetwork: "a", AnnotationPorts: "127.0.0.1:80:80,0.0.0.0:80:81"}, `host port 80/tcp is published twice`},
		{"PortTwiceMapped", map[string]string{AnnotationNetwork: "a", AnnotationPorts: "[::ffff:10.0.0.1]:80:80/udp,10.0.0.1:80:81/udp"}, `host port 80/udp is published twice`},
		{"RateKey", map[string]string{AnnotationNetwork: "a", AnnotationRate: "up=1mbit"}, `org.lkc.net-rate: "up=1mbit": use egress=RATE`},
		{"RateUnit", map[string]string{AnnotationNetwork: "a", AnnotationRate: "egress=10mbps"}, `egress: rate "10mbps"`},
		{"RateZero", map[string]string{AnnotationNetwork: "a", AnnotationRate: "egress=0"}, `egress: rate "0"`},
		{"RateTiny", map[string]string{AnnotationNetwork: "a", AnnotationRate: "ingress=100bit"}, `ingress: rate "100bit"`},
		{"RateTooFast", map[string]string{AnnotationNetwork: "a", AnnotationRate: "egress=1tbit"}, `egress: rate "1tbit": use a number with bit, kbit, mbit, gbit or tbit, from 8kbit to 640gbit`},
		{"RateNaN", map[string]string{AnnotationNetwork: "a", AnnotationRate: "egress=nanmbit"}, `egress: rate "nanmbit"`},
		{"RateNaNBare", map[string]string{AnnotationNetwork: "a", AnnotationRate: "ingress=NaN"}, `ingress: rate "NaN"`},
		{"RateTwice", map[string]string{AnnotationNetwork: "a", AnnotationRate: "egress=1mbit,egress=2mbit"}, `egress is given twice`},
		{"RateNoneTwice", map[string]string{AnnotationNetwork: "a", AnnotationRate: "egress=none,egress=2mbit"}, `egress is given twice`},
		{"RateNoneMixed", map[string]string{AnnotationNetwork: "a", AnnotationRate: "none,egress=2mbit"}, `"none": use egress=RATE,ingress=RATE (RATE like 10mbit, or none)`},
		{"RateEmpty", map[string]string{AnnotationNetwork: "a", AnnotationRate: "ingress="}, `ingress: rate ""`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := FromAnnotations(c.a)
			if err == nil {
				t.Fatalf("%v accepted, want an error matching %q", c.a, c.want)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			if !matches(msg, c.want) {
				t.Errorf("error %q does not match %q", msg, c.want)
			}
		})
	}
}

func matches(msg, want string) bool {
	return strings.Contains(msg, strings.NewReplacer(`\[`, "[", `\]`, "]").Replace(want))
}

func TestRateString(t *testing.T) {
	for _, v := range []string{"none", "egress=10mbit", "egress=8kbit,ingress=3gbit"} {
		r, err := ParseRate(v)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseRate(r.String())
		if err != nil || back != r {
			t.Errorf("%q: String %q reads back as %+v, %v", v, r.String(), back, err)
		}
	}
}

// TestRateChange: a change keeps the directions it does not name, and
// none removes the ones it names.
func TestRateChange(t *testing.T) {
	cur := Rate{Egress: 10e6, Ingress: 20e6}
	for _, c := range []struct {
		change string
		want   Rate
	}{
		{"egress=30mbit", Rate{Egress: 30e6, Ingress: 20e6}},
		{"ingress=30mbit", Rate{Egress: 10e6, Ingress: 30e6}},
		{"egress=1mbit,ingress=2mbit", Rate{Egress: 1e6, Ingress: 2e6}},
		{"egress=none", Rate{Ingress: 20e6}},
		{"ingress=none", Rate{Egress: 10e6}},
		{"egress=none,ingress=5mbit", Rate{Ingress: 5e6}},
		{"none", Rate{}},
	} {
		ch, err := ParseRateChange(c.change)
		if err != nil {
			t.Errorf("%q: %v", c.change, err)
			continue
		}
		if got := ch.Apply(cur); got != c.want {
			t.Errorf("%q applied to %+v = %+v, want %+v", c.change, cur, got, c.want)
		}
	}
	// As an annotation, a direction given as none is unlimited.
	if r, err := ParseRate("egress=none,ingress=1mbit"); err != nil || r != (Rate{Ingress: 1e6}) {
		t.Errorf("ParseRate(egress=none,ingress=1mbit) = %+v, %v", r, err)
	}
}

func TestBandwidthBurst(t *testing.T) {
	m := bandwidth(Rate{Egress: 10e6})
	if m["egressRate"] != 10e6 || m["egressBurst"] < 64*1024*8 || m["ingressRate"] != 0 {
		t.Errorf("bandwidth(egress 10mbit) = %v", m)
	}
	if b := bandwidthBurst(1e9); b != 1e9/20 {
		t.Errorf("burst of 1gbit = %d, want 50 ms of it", b)
	}
}

// TestPortsSameNumberApart: one host port on addresses that share none
// (two IPv4 ones, IPv4 any beside IPv6 any) is published once on each.
func TestPortsSameNumberApart(t *testing.T) {
	for _, v := range []string{"127.0.0.1:80:80,127.0.0.2:80:81", "0.0.0.0:80:80,[::]:80:81", "[::1]:80:80,127.0.0.1:80:81", "80:80/tcp,80:80/udp"} {
		if ports, err := ParsePorts(v); err != nil || len(ports) != 2 {
			t.Errorf("%s: %v, %v; want two ports", v, ports, err)
		}
	}
}

// TestNetSysctls: the net.* keys go to SetSysctls, the others stay
// init's.
func TestNetSysctls(t *testing.T) {
	net, other := NetSysctls(map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1", "net.ipv6.conf.eth0.accept_ra": "0"})
	if !reflect.DeepEqual(net, map[string]string{"net.ipv4.ip_forward": "1", "net.ipv6.conf.eth0.accept_ra": "0"}) || !reflect.DeepEqual(other, map[string]string{"kernel.shmmax": "1"}) {
		t.Errorf("got %v, %v", net, other)
	}
	if net, other := NetSysctls(nil); net != nil || other != nil {
		t.Errorf("none: got %v, %v", net, other)
	}
}
