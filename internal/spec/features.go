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
	actions, ops, archs, flags := seccompFeatures()
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  opts,
		Linux: &features.Linux{
			Namespaces:   NamespaceNames(),
			Capabilities: CapabilityNames(),
			Cgroup:       &features.Cgroup{V1: &t, V2: &t},
			// SupportedFlags depends on the libseccomp linked in: the CLI
			// adds it from internal/seccomp.
			Seccomp: &features.Seccomp{
				Enabled: &t, Actions: actions, Operators: ops, Archs: archs, KnownFlags: flags,
			},
			MountExtensions: &features.MountExtensions{
				IDMap: &features.IDMap{Enabled: &t},
			},
		},
		// The features schema has no field for process.scheduler,
		// ioPriority and execCPUAffinity (nor does runc's output list
		// them): annotations say that lkc applies them, as runc's say
		// that it checkpoints.
		Annotations: map[string]string{
			"org.lkc.version":                         "dev",
			"org.lkc.process.scheduler.enabled":       "true",
			"org.lkc.process.ioPriority.enabled":      "true",
			"org.lkc.process.execCPUAffinity.enabled": "true",
		},
	}
}
