package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// benchNetwork is one of the run-net scenario's CNI networks, apart from
// the host's default network `lkc` (docs/network.md): lkc and Podman each
// get their own bridge, subnets and IPAM data but the same plugin list.
type benchNetwork struct {
	name, bridge string
	subnet4      string
	subnet6      string // "" for an IPv4-only network
}

// The networks: dual-stack as lkc's default network, and IPv4-only as
// Podman's default network (bridge, host-local, portmap, firewall).
var (
	lkcNet     = benchNetwork{"lkc-bench", "lkcbench0", "10.78.0.0/24", "fd78:6c6b:6300::/64"}
	podmanNet  = benchNetwork{"lkc-bench-pm", "lkcbench1", "10.78.1.0/24", "fd78:6c6b:6301::/64"}
	lkcNet4    = benchNetwork{"lkc-bench4", "lkcbench2", "10.78.2.0/24", ""}
	podmanNet4 = benchNetwork{"lkc-bench4-pm", "lkcbench3", "10.78.3.0/24", ""}
)

// conflist is the network's CNI configuration: bridge with host-local,
// portmap, firewall and bandwidth, the default network's plugins.
func (n benchNetwork) conflist(ipamDir string) string {
	ranges := fmt.Sprintf(`[{"subnet":%q}]`, n.subnet4)
	if n.subnet6 != "" {
		ranges += fmt.Sprintf(`,[{"subnet":%q}]`, n.subnet6)
	}
	return fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[
 {"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":true,"hairpinMode":true,
  "ipam":{"type":"host-local","dataDir":%q,"routes":[{"dst":"0.0.0.0/0"}],"ranges":[%s]}},
 {"type":"portmap","capabilities":{"portMappings":true}},{"type":"firewall"},
 {"type":"bandwidth","capabilities":{"bandwidth":true}}]}`, n.name, n.bridge, ipamDir, ranges)
}

// write puts the network's configuration into dir, with its IPAM data
// in a directory beside it.
func (n benchNetwork) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	conf := n.conflist(filepath.Join(filepath.Dir(dir), "ipam"))
	return os.WriteFile(filepath.Join(dir, n.name+".conflist"), []byte(conf), 0o644)
}

// removeBridge deletes the network's bridge, which no plugin's DEL does.
func (n benchNetwork) removeBridge() {
	exec.Command("ip", "link", "del", n.bridge).Run()
}

// runNetScenario measures what CNI networking adds to `lkc run` of
// /bin/true (ADD at create, DEL at delete), bare and with a published
// port and both rate limits, beside `podman run` (runc) on a network
// with the same plugins, and the same again on IPv4-only networks.
func runNetScenario() Scenario {
	return Scenario{
		Name: "run-net",
		Desc: "'lkc run' of /bin/true without a network, on a bridge network (org.lkc.network), with a port and rate limits too; 'podman run --rm' (runc) with the same plugins",
		Ratios: [][2]string{{"lkc-net", "lkc"}, {"lkc-net-full", "lkc"}, {"lkc-net", "podman-net"},
			{"lkc-net4", "podman-net4"}, {"lkc", "podman"},
			{"lkc-net", "lkc-base-net"}, {"lkc-net4", "lkc-base-net4"}},
		Variants: func(env *Env) []Variant {
			vs := []Variant{
				runtimeRunVariant(env, "lkc", env.LKC),
				netRunVariant(env, "lkc-net", env.LKC, lkcNet, nil),
				netRunVariant(env, "lkc-net-full", env.LKC, lkcNet, map[string]string{
					"org.lkc.ports": "18790:80", "org.lkc.net-rate": "egress=10mbit,ingress=20mbit"}),
				netRunVariant(env, "lkc-net4", env.LKC, lkcNet4, nil),
				podmanRunVariant(env, "podman", nil),
				podmanRunVariant(env, "podman-net", &podmanNet),
				podmanRunVariant(env, "podman-net4", &podmanNet4),
			}
			if env.Baseline != "" {
				vs = append(vs, netRunVariant(env, "lkc-base-net", env.Baseline, lkcNet, nil),
					netRunVariant(env, "lkc-base-net4", env.Baseline, lkcNet4, nil))
			}
			return vs
		},
	}
}

// lkcNetDir is the configuration directory of the scenario's lkc
// networks (LKC_NET_DIR).
func lkcNetDir(env *Env) string { return filepath.Join(env.Dir, "net.d") }

// netRunVariant is `lkc run` (the binary bin) of a bundle on network n
// with the extra annotations a; its Prepare writes the network into a directory of the
// run and points lkc at it.
func netRunVariant(env *Env, name, bin string, n benchNetwork, a map[string]string) Variant {
	bundle := filepath.Join(env.Dir, "bundle-"+name)
	v := bundleRunVariant(env, name, bin, bundle)
	prepare, cleanup := v.Prepare, v.Cleanup
	ann := map[string]string{"org.lkc.network": n.name}
	for k, val := range a {
		ann[k] = val
	}
	v.Desc = fmt.Sprintf("lkc run with annotations %v", ann)
	v.Prepare = func() (string, error) {
		if err := writeLKCNet(env, n); err != nil {
			return "", err
		}
		err := os.MkdirAll(bundle, 0o755)
		if err == nil {
			err = editConfig(filepath.Join(env.Bundle, "config.json"), filepath.Join(bundle, "config.json"),
				func(spec map[string]any) error { return setNetBundle(spec, env.Rootfs, ann) })
		}
		if err != nil {
			return "", err
		}
		return prepare()
	}
	v.Cleanup = func() error {
		err := cleanup()
		n.removeBridge()
		return err
	}
	return v
}

// writeLKCNet writes n into the lkc networks' directory and points lkc at
// it; the lkc processes the runner starts inherit the variable.
func writeLKCNet(env *Env, n benchNetwork) error {
	if err := n.write(lkcNetDir(env)); err != nil {
		return fmt.Errorf("writing network %s: %w", n.name, err)
	}
	return os.Setenv("LKC_NET_DIR", lkcNetDir(env))
}

func setNetBundle(spec map[string]any, rootfs string, a map[string]string) error {
	if err := setBenchProcess(spec); err != nil {
		return err
	}
	root, ok := spec["root"].(map[string]any)
	if !ok {
		return fmt.Errorf(`config has no "root" object`)
	}
	root["path"] = rootfs
	spec["annotations"] = a
	return nil
}
