package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lkc-containers/lkc/internal/cleanup"
	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/network"
	"github.com/lkc-containers/lkc/internal/steplog"
)

// NetworkPlan is networkPlan for a restore, which attaches the restored
// container to the same networks.
func NetworkPlan(cfg *config.Config) (*network.Plan, error) { return networkPlan(cfg) }

// networkPlan reads the CNI networks cfg's annotations ask for, nil when
// they ask for none (then no configuration is read), with cfg's net.*
// sysctls, which attachNetwork writes after ADD (a port that needs an
// IPv6 address they take is refused here, before anything is made). The
// networks go into a namespace the container creates: one joined by path
// belongs to whoever made it (a pod's sandbox, another container), whose
// networking lkc must not add to, so asking for both is an error.
func networkPlan(cfg *config.Config) (*network.Plan, error) {
	req, err := network.FromAnnotations(cfg.Annotations)
	if err != nil || req == nil {
		return nil, err
	}
	for _, ns := range cfg.Namespaces {
		if ns.Type != "network" {
			continue
		}
		if ns.Path != "" {
			return nil, fmt.Errorf("annotation %s: the config joins the network namespace %s; lkc attaches networks only to a namespace it creates", network.AnnotationNetwork, ns.Path)
		}
		req.Sysctls, _ = network.NetSysctls(cfg.Sysctl)
		return network.Load(network.ConfDir(), req)
	}
	return nil, fmt.Errorf("annotation %s: the config has no network namespace (add one to linux.namespaces)", network.AnnotationNetwork)
}

// attachNetwork runs ADD of plan's networks in the namespace of init (pid),
// which exists and has not started the user's process, then writes the
// config's net.* sysctls there (init left them: initConfig); undo gets
// the DEL.
func attachNetwork(plan *network.Plan, cfg *config.Config, stateDir string, pid int, undo *cleanup.Stack) error {
	defer steplog.Step("create: network")()
	if err := plan.Attach(stateDir, pid); err != nil {
		return err
	}
	undo.Add(func() { network.Detach(stateDir) })
	netSysctls, _ := network.NetSysctls(cfg.Sysctl)
	return network.SetSysctls(stateDir, netSysctls)
}

// initConfig is cfg as init gets it: for a container attached to
// networks (plan), without the net.* sysctls, which attachNetwork writes
// once ADD has made the interfaces they may name.
func initConfig(cfg *config.Config, plan *network.Plan) *config.Config {
	if plan == nil {
		return cfg
	}
	c := *cfg
	_, c.Sysctl = network.NetSysctls(cfg.Sysctl)
	return &c
}

// hasNetwork tells whether cfg asked for CNI networks, which delete then
// releases.
func hasNetwork(cfg *config.Config) bool {
	if cfg == nil {
		return false
	}
	_, ok := cfg.Annotations[network.AnnotationNetwork]
	return ok
}

// detachNetwork runs DEL of the networks the container in stateDir was
// attached to.
func detachNetwork(stateDir string) error {
	defer steplog.Step("delete: network")()
	return network.Detach(stateDir)
}

// CheckNetwork runs CHECK of the CNI networks of the container (`state
// --check`); nil when it has none. It holds the container's lock
// exclusively, as the CNI spec has no two operations run for one
// container at once (two checks, a check and a rate change or a DEL).
func CheckNetwork(root, id string) error {
	c, err := load(root, id, true)
	if err != nil {
		return err
	}
	defer c.close()
	if !hasNetwork(c.st.Config) {
		return nil
	}
	defer steplog.Step("state: network check")()
	return network.Check(c.dir.Path())
}

// UpdateNetRate changes the CNI rate limit of a container that is not
// stopped, live, and records it in the container's annotation, so `state`
// shows the limit in force. A direction the change leaves out keeps the
// limit the annotation names.
func UpdateNetRate(root, id string, change network.RateChange) error {
	c, err := load(root, id, true)
	if err != nil {
		return err
	}
	defer c.close()
	if s := c.status(); s == Stopped {
		return wrongState(id, "update", s)
	}
	if !hasNetwork(c.st.Config) {
		return fmt.Errorf("--net-rate: container %s has no network (annotation %s)", id, network.AnnotationNetwork)
	}
	var cur network.Rate
	if v, ok := c.st.Config.Annotations[network.AnnotationRate]; ok {
		if cur, err = network.ParseRate(v); err != nil {
			return fmt.Errorf("--net-rate: container %s: annotation %s: %w", id, network.AnnotationRate, err)
		}
	}
	r := change.Apply(cur)
	if err := network.SetRate(c.dir.Path(), r); err != nil {
		return fmt.Errorf("--net-rate: container %s: %w", id, err)
	}
	c.st.Config.Annotations[network.AnnotationRate] = r.String()
	if err := c.dir.Save(c.st); err != nil {
		return fmt.Errorf("--net-rate: container %s: rate applied but not recorded: %w", id, err)
	}
	return nil
}

// LiveAnnotations are the annotations lkc changes on a running container
// (org.lkc.net-rate, which `update --net-rate` sets), as in force now; nil
// when none is set. The bundle's config.json keeps the values of create,
// so a restore or a migration that must keep the container as it is
// carries these along.
func (h *Handle) LiveAnnotations() map[string]string {
	rate, ok := h.Config().Annotations[network.AnnotationRate]
	if !ok {
		return nil
	}
	return map[string]string{network.AnnotationRate: rate}
}

// BundleConfig is the bundle's config.json with LiveAnnotations in force,
// as a migration sends it for the restore on the target.
func (h *Handle) BundleConfig() ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(h.Bundle(), "config.json"))
	if err != nil {
		return nil, fmt.Errorf("reading the bundle's config: %w", err)
	}
	live := h.LiveAnnotations()
	if live == nil {
		return data, nil
	}
	var s map[string]json.RawMessage
	var a map[string]string
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("decoding the bundle's config: %w", err)
	}
	if raw, ok := s["annotations"]; ok {
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("decoding the bundle's annotations: %w", err)
		}
	}
	if a == nil {
		a = map[string]string{}
	}
	for k, v := range live {
		a[k] = v
	}
	if s["annotations"], err = json.Marshal(a); err != nil {
		return nil, err
	}
	return json.Marshal(s)
}
