package network

import "testing"

func TestIPv6Taken(t *testing.T) {
	for _, c := range []struct {
		sysctls map[string]string
		key     string
	}{
		{nil, ""},
		{map[string]string{"net.ipv6.conf.all.disable_ipv6": "1"}, "net.ipv6.conf.all.disable_ipv6=1"},
		{map[string]string{"net/ipv6/conf/eth1/disable_ipv6": "1"}, "net/ipv6/conf/eth1/disable_ipv6=1"},
		// Enabled again after all's: the addresses are gone all the same.
		{map[string]string{"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.eth1.disable_ipv6": "0"}, "net.ipv6.conf.all.disable_ipv6=1"},
		{map[string]string{"net.ipv6.conf.all.disable_ipv6": "0", "net.ipv6.conf.eth1.disable_ipv6": "2"}, "net.ipv6.conf.eth1.disable_ipv6=2"},
		// default's is for interfaces made after ADD; another's is its own.
		{map[string]string{"net.ipv6.conf.default.disable_ipv6": "1", "net.ipv6.conf.eth0.disable_ipv6": "1"}, ""},
		{map[string]string{"net.ipv6.conf.all.disable_ipv6": "0", "net.ipv4.ip_forward": "1"}, ""},
	} {
		key, taken := ipv6Taken(c.sysctls, "eth1")
		if key != c.key || taken != (c.key != "") {
			t.Errorf("ipv6Taken(%v, eth1) = %q, %v; want %q", c.sysctls, key, taken, c.key)
		}
	}
}

func TestLoadIPv6Taken(t *testing.T) {
	dir := confDir(t)
	off := map[string]string{"net.ipv6.conf.eth1.disable_ipv6": "1"}
	ports := []Port{{HostPort: 1, ContainerPort: 2, Protocol: "tcp"}, {HostPort: 3, ContainerPort: 4, Protocol: "udp", HostIP: "127.0.0.1"}}
	p, err := Load(dir, &Request{Networks: []string{"plain", "full"}, Ports: ports, Sysctls: off})
	if err != nil {
		t.Fatal(err)
	}
	if p.attachments[0].IPv6Taken || !p.attachments[1].IPv6Taken {
		t.Errorf("IPv6Taken of eth0, eth1: %v, %v; want false, true", p.attachments[0].IPv6Taken, p.attachments[1].IPv6Taken)
	}
	got := p.attachments[1].Caps["portMappings"].([]Port)
	if len(got) != 2 || got[0].HostIP != "0.0.0.0" || got[1].HostIP != "127.0.0.1" || p.ports[0].HostIP != "0.0.0.0" {
		t.Errorf("ports published: %+v (noted %+v), want the first on 0.0.0.0 and the second as asked", got, p.ports)
	}
	if ports[0].HostIP != "" {
		t.Errorf("Load changed the request's ports: %+v", ports)
	}
	for _, host := range []string{"::", "fd00::1"} {
		bad := append(ports, Port{HostPort: 8080, ContainerPort: 80, Protocol: "tcp", HostIP: host})
		want := "annotation org.lkc.ports: port [" + host + "]:8080:80/tcp needs IPv6, and the config's sysctl net.ipv6.conf.eth1.disable_ipv6=1 disables it on eth1"
		if _, err := Load(dir, &Request{Networks: []string{"plain", "full"}, Ports: bad, Sysctls: off}); err == nil || err.Error() != want {
			t.Errorf("Load with a port on %s = %v, want %q", host, err, want)
		}
	}
	// IPv6 disabled on another interface than the ports': they stay as asked.
	p, err = Load(dir, &Request{Networks: []string{"full"}, Ports: ports, Sysctls: off})
	if err != nil || p.ports[0].HostIP != "" {
		t.Errorf("Load with eth1's IPv6 disabled, ports on eth0: %+v, %v", p, err)
	}
}
