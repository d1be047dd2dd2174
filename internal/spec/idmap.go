package spec

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/config"
)

// idmapOptions are runc's options that make a bind an idmapped mount:
// "ridmap" maps every mount of an rbind, "idmap" only its top one (the
// last of the two wins). Neither is passed on to the kernel.
var idmapOptions = map[string]bool{"idmap": false, "ridmap": true}

// convertIDMapping returns how mount i, m, of type typ (after the bind
// options), maps its files' owners, or nil for a mount that asks for no
// idmapping, by runc 1.2's rules: a bind only; the mount's own
// uidMappings and gidMappings, both or neither; with neither, the idmap
// or ridmap option takes the maps of the container's user namespace (new:
// its linux.uidMappings and gidMappings; joined: that namespace), and a
// container without one is refused. Mount mappings need no user
// namespace of the container's. c has its namespaces converted.
func convertIDMapping(i int, m specs.Mount, typ string, c *config.Config) (*config.MountIDMapping, error) {
	option, recursive := "", false
	for _, o := range m.Options {
		if r, ok := idmapOptions[o]; ok {
			option, recursive = o, r
		}
	}
	own := len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0
	if option == "" && !own {
		return nil, nil
	}
	where := fmt.Sprintf("mounts[%d] %s: ", i, m.Destination)
	if typ != "bind" {
		return nil, invalid("%sidmapped mounts (idmap, ridmap, uidMappings, gidMappings) are made of binds only, not of type %q", where, typ)
	}
	idm := &config.MountIDMapping{Recursive: recursive}
	if !own {
		switch {
		case c.NewNamespace("user"):
			idm.UIDMappings, idm.GIDMappings = c.UIDMappings, c.GIDMappings
		case c.HasNamespace("user"):
			idm.UserNS = namespacePath(c, "user")
		default:
			return nil, invalid("%soption %q without uidMappings and gidMappings takes the maps of the container's user namespace, and the container has none", where, option)
		}
		return idm, nil
	}
	if len(m.UIDMappings) == 0 || len(m.GIDMappings) == 0 {
		return nil, invalid("%san idmapped mount needs both uidMappings and gidMappings", where)
	}
	var err error
	if idm.UIDMappings, err = convertIDMap(where, "uidMappings", m.UIDMappings); err != nil {
		return nil, err
	}
	if idm.GIDMappings, err = convertIDMap(where, "gidMappings", m.GIDMappings); err != nil {
		return nil, err
	}
	return idm, nil
}

// namespacePath is the path of the namespace of type typ that c joins.
func namespacePath(c *config.Config, typ string) string {
	for _, ns := range c.Namespaces {
		if ns.Type == typ {
			return ns.Path
		}
	}
	return ""
}
