package network

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// Plan is a request with its network configurations read: what create
// attaches once the namespace exists. Loading it first lets a bad name
// fail create before anything is made.
type Plan struct {
	attachments []attachment
	ports       []Port // published, noted at attach (hostports.go)
}

// attachment is one network of a container as ADD was given it, kept in
// the container's record so DEL finds it even when the configuration file
// has changed or gone since.
type attachment struct {
	Name   string         `json:"name"`
	IfName string         `json:"ifName"`
	Config []byte         `json:"config"`
	Caps   map[string]any `json:"capabilityArgs,omitempty"`
	// IPv6Taken says the config's sysctls take the IPv6 addresses ADD
	// gives the interface (ipv6Taken), so CHECK is given none.
	IPv6Taken bool `json:"ipv6Taken,omitempty"`
}

// Load reads the configurations req names from dir. Ports and the rate go
// to the first network able to honour them; a request that none can is an
// error rather than silently unmet.
func Load(dir string, req *Request) (*Plan, error) {
	p := &Plan{}
	portsTo, rateTo := "", ""
	for i, name := range req.Networks {
		list, err := loadList(dir, name)
		if err != nil {
			return nil, err
		}
		if err := checkHostIPv6(name, list); err != nil {
			return nil, err
		}
		a := attachment{Name: name, IfName: fmt.Sprintf("eth%d", i), Config: list.Bytes, Caps: map[string]any{}}
		_, a.IPv6Taken = ipv6Taken(req.Sysctls, a.IfName)
		if len(req.Ports) > 0 && portsTo == "" && hasCapability(list, "portMappings") {
			if p.ports, err = publishable(req.Ports, req.Sysctls, a.IfName); err != nil {
				return nil, err
			}
			a.Caps["portMappings"], portsTo = p.ports, name
		}
		if req.Rate.Any() && rateTo == "" && hasCapability(list, "bandwidth") {
			a.Caps["bandwidth"], rateTo = bandwidth(req.Rate), name
		}
		if _, ok := a.Caps["portMappings"]; !ok {
			if a.Config, err = withoutPlugin(list.Bytes, portmapType); err != nil {
				return nil, fmt.Errorf("network %s: %w", name, err)
			}
		}
		p.attachments = append(p.attachments, a)
	}
	if len(req.Ports) > 0 && portsTo == "" {
		return nil, fmt.Errorf("annotation %s: no network of %v has a plugin with the portMappings capability (portmap)", AnnotationPorts, req.Networks)
	}
	if req.Rate.Any() && rateTo == "" {
		return nil, fmt.Errorf("annotation %s: no network of %v has a plugin with the bandwidth capability", AnnotationRate, req.Networks)
	}
	return p, nil
}

// loadList finds the configuration named name in dir as libcni's
// LoadNetworkConf does (the .conflist files in name order, then the
// .conf and .json ones), but past the files that do not parse, as Podman
// does: libcni stops at the first, so one broken file, of any network,
// kept every network sorted after it from loading. When none is found,
// the error names the files skipped.
func loadList(dir, name string) (*libcni.NetworkConfigList, error) {
	var broken []string
	for _, exts := range [][]string{{".conflist"}, {".conf", ".json"}} {
		files, err := libcni.ConfFiles(dir, exts)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", name, err)
		}
		sort.Strings(files)
		for _, f := range files {
			list, err := readList(f)
			if err != nil {
				broken = append(broken, fmt.Sprintf("%s (%v)", filepath.Base(f), err))
				continue
			}
			if list.Name == name {
				return list, nil
			}
		}
	}
	err := fmt.Errorf("network %s: no configuration of that name in %s", name, dir)
	if len(broken) > 0 {
		err = fmt.Errorf("%w; files that do not parse: %s", err, strings.Join(broken, ", "))
	}
	return nil, err
}

// readList reads a configuration list, or a single configuration as a
// list of one.
func readList(file string) (*libcni.NetworkConfigList, error) {
	if strings.HasSuffix(file, ".conflist") {
		return libcni.ConfListFromFile(file)
	}
	conf, err := libcni.ConfFromFile(file)
	if err != nil {
		return nil, err
	}
	return libcni.ConfListFromConf(conf)
}

// portmapType is the plugin that publishes ports: without portMappings its
// ADD hands its prevResult on unchanged, and its CHECK and DEL return at
// once (containernetworking/plugins 1.1.1 and upstream's current code).
const portmapType = "portmap"

// withoutPlugin is the configuration list conf without its plugins of type
// typ, for an attachment that asks nothing of them: an ADD that leaves
// them out makes the same network with fewer processes (for portmap, one
// at ADD and one at DEL). The record keeps the list as ADD
// ran it, so CHECK and DEL run the same plugins. A list of that plugin
// alone stays whole, for the plugin to refuse as it would.
func withoutPlugin(conf []byte, typ string) ([]byte, error) {
	var list map[string]json.RawMessage
	if err := json.Unmarshal(conf, &list); err != nil {
		return nil, fmt.Errorf("decoding the configuration: %w", err)
	}
	var plugins, kept []json.RawMessage
	if err := json.Unmarshal(list["plugins"], &plugins); err != nil {
		return nil, fmt.Errorf("decoding the configuration's plugins: %w", err)
	}
	for _, raw := range plugins {
		var pl struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(raw, &pl); err != nil {
			return nil, fmt.Errorf("decoding the configuration's plugins: %w", err)
		}
		if pl.Type != typ {
			kept = append(kept, raw)
		}
	}
	if len(kept) == len(plugins) || len(kept) == 0 {
		return conf, nil
	}
	var err error
	if list["plugins"], err = json.Marshal(kept); err != nil {
		return nil, err
	}
	return json.Marshal(list)
}

func hasCapability(list *libcni.NetworkConfigList, c string) bool {
	for _, p := range list.Plugins {
		if p.Network.Capabilities[c] {
			return true
		}
	}
	return false
}

// bandwidthBurst is the bucket given with a rate: 50 ms of it, and at
// least 64 KiB, the largest segment a veth hands over at once, which a
// smaller bucket would drop.
func bandwidthBurst(rate uint64) uint64 {
	return max(rate/20, 64*1024*8)
}

// bandwidth is the bandwidth plugin's runtimeConfig for r (bits, bits/s;
// the plugin's ingress is the container's).
func bandwidth(r Rate) map[string]uint64 {
	m := map[string]uint64{}
	if r.Ingress > 0 {
		m["ingressRate"], m["ingressBurst"] = r.Ingress, bandwidthBurst(r.Ingress)
	}
	if r.Egress > 0 {
		m["egressRate"], m["egressBurst"] = r.Egress, bandwidthBurst(r.Egress)
	}
	return m
}
