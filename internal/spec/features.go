package spec

import (
	"sort"

	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// Features describes what this build of lkc implements, for `lkc features`.
func Features() *features.Features {
	t := true
	opts := MountOptionNames()
	sort.Strings(opts)
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  opts,
		Linux: &features.Linux{
			Namespaces:   NamespaceNames(),
			Capabilities: CapabilityNames(),
			Cgroup:       &features.Cgroup{V1: &t, V2: &t},
			MountExtensions: &features.MountExtensions{
				IDMap: &features.IDMap{Enabled: new(bool)},
			},
		},
		Annotations: map[string]string{"org.lkc.version": "dev"},
	}
}
