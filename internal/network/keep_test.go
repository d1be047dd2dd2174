package network

import (
	"encoding/json"
	"testing"
)

func TestWithIPArgs(t *testing.T) {
	conf := []byte(`{"cniVersion":"1.0.0","name":"n","plugins":[
 {"type":"bridge","args":{"cni":{"other":1}},"ipam":{"type":"host-local"}},
 {"type":"portmap","capabilities":{"portMappings":true}}]}`)
	out, err := withIPArgs(conf, []string{"10.1.0.5", "fd00::5"})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Plugins []struct {
			Type string `json:"type"`
			Args *struct {
				CNI map[string]any `json:"cni"`
			} `json:"args"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	br, pm := got.Plugins[0], got.Plugins[1]
	ips, _ := br.Args.CNI["ips"].([]any)
	if len(ips) != 2 || ips[0] != "10.1.0.5" || ips[1] != "fd00::5" || br.Args.CNI["other"] != 1.0 {
		t.Errorf("bridge args: %+v", br.Args.CNI)
	}
	if pm.Args != nil {
		t.Errorf("portmap, which has no ipam, got args %+v", pm.Args.CNI)
	}
	if same, _ := withIPArgs(conf, nil); string(same) != string(conf) {
		t.Errorf("no addresses changed the configuration")
	}
}
