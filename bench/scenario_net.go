package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// The run-net scenario's own CNI network: its bridge, subnets and IPAM
// data apart from the host's default network `lkc` (docs/network.md).
const (
	benchNet    = "lkc-bench"
	benchBridge = "lkcbench0"
	benchConf   = `{"cniVersion":"1.0.0","name":%q,"plugins":[
 {"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":true,"hairpinMode":true,
  "ipam":{"type":"host-local","dataDir":%q,"routes":[{"dst":"0.0.0.0/0"}],
   "ranges":[[{"subnet":"10.78.0.0/24"}],[{"subnet":"fd78:6c6b:6300::/64"}]]}},
 {"type":"portmap","capabilities":{"portMappings":true}},{"type":"firewall"},
 {"type":"bandwidth","capabilities":{"bandwidth":true}}]}`
)

// runNetScenario measures what CNI networking adds to `lkc run` of
// /bin/true: ADD at create and DEL at delete, with the plugins of the
// default network, bare and with a published port and both rate limits.
func runNetScenario() Scenario {
	return Scenario{
		Name:   "run-net",
		Desc:   "'lkc run' of /bin/true without a network, on a bridge network (org.lkc.network), and with a port and rate limits too",
		Ratios: [][2]string{{"lkc-net", "lkc"}, {"lkc-net-full", "lkc"}},
		Variants: func(env *Env) []Variant {
			return []Variant{
				runtimeRunVariant(env, "lkc", env.LKC),
				netRunVariant(env, "lkc-net", map[string]string{"org.lkc.network": benchNet}),
				netRunVariant(env, "lkc-net-full", map[string]string{"org.lkc.network": benchNet,
					"org.lkc.ports": "18790:80", "org.lkc.net-rate": "egress=10mbit,ingress=20mbit"}),
			}
		},
	}
}

// netRunVariant is `lkc run` of a bundle with annotations a, whose network
// the variant's Prepare writes into a directory of the run (LKC_NET_DIR).
func netRunVariant(env *Env, name string, a map[string]string) Variant {
	bundle := filepath.Join(env.Dir, "bundle-"+name)
	v := bundleRunVariant(env, name, env.LKC, bundle)
	prepare, cleanup := v.Prepare, v.Cleanup
	v.Desc = fmt.Sprintf("lkc run with annotations %v", a)
	v.Prepare = func() (string, error) {
		if err := writeBenchNet(env.Dir); err != nil {
			return "", err
		}
		err := os.MkdirAll(bundle, 0o755)
		if err == nil {
			err = editConfig(filepath.Join(env.Bundle, "config.json"), filepath.Join(bundle, "config.json"),
				func(spec map[string]any) error { return setNetBundle(spec, env.Rootfs, a) })
		}
		if err != nil {
			return "", err
		}
		return prepare()
	}
	v.Cleanup = func() error {
		err := cleanup()
		exec.Command("ip", "link", "del", benchBridge).Run()
		return err
	}
	return v
}

// writeBenchNet writes the scenario's network into dir/net.d and points
// lkc at it; the lkc processes the runner starts inherit the variable.
func writeBenchNet(dir string) error {
	netDir := filepath.Join(dir, "net.d")
	if err := os.MkdirAll(netDir, 0o755); err != nil {
		return err
	}
	conf := fmt.Sprintf(benchConf, benchNet, benchBridge, filepath.Join(dir, "ipam"))
	if err := os.WriteFile(filepath.Join(netDir, benchNet+".conflist"), []byte(conf), 0o644); err != nil {
		return err
	}
	return os.Setenv("LKC_NET_DIR", netDir)
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
