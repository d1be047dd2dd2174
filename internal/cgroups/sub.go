package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
)

// ParseSub parses runc's `exec --cgroup` values, each "[controllers:]path"
// (controllers comma-separated), into controller -> path, with "" for a
// path that applies to every controller.
func ParseSub(values []string) (map[string]string, error) {
	sub := map[string]string{}
	for _, v := range values {
		ctrls, path, found := strings.Cut(v, ":")
		if !found {
			ctrls, path = "", v
		}
		if path == "" {
			return nil, fmt.Errorf("--cgroup %q: empty path", v)
		}
		for _, c := range strings.Split(ctrls, ",") {
			if found && c == "" {
				return nil, fmt.Errorf("--cgroup %q: empty controller name", v)
			}
			if _, dup := sub[c]; dup {
				return nil, fmt.Errorf("--cgroup %q: controller %q given twice", v, c)
			}
			sub[c] = path
		}
	}
	return sub, nil
}

// Sub returns the manager of existing sub-cgroups of m: sub maps a
// controller ("" = every controller) to a path relative to the container's
// cgroup. Hierarchies sub does not name stay at the container's cgroup. The
// paths must stay inside the container's cgroup and must exist: lkc never
// creates cgroups on behalf of an exec.
func Sub(m Manager, sub map[string]string) (Manager, error) {
	paths := m.Paths()
	if dir, v2 := cgroupfs.V2Dir(paths); v2 {
		return subV2(dir, sub)
	}
	out := make(map[string]string, len(paths))
	used := map[string]bool{}
	for hier, dir := range paths {
		out[hier] = dir
		for _, c := range append(strings.Split(hier, ","), "") {
			if p, ok := sub[c]; ok {
				used[c] = true
				d, err := subDir(dir, p)
				if err != nil {
					return nil, err
				}
				out[hier] = d
			}
		}
	}
	for c := range sub {
		if c != "" && !used[c] {
			return nil, fmt.Errorf("--cgroup: the container has no %q controller", c)
		}
	}
	return FromPaths(out, nil), nil
}

func subV2(dir string, sub map[string]string) (Manager, error) {
	p, ok := sub[""]
	if !ok || len(sub) != 1 {
		return nil, fmt.Errorf("--cgroup: cgroup v2 has one hierarchy: give a path without controllers")
	}
	d, err := subDir(dir, p)
	if err != nil {
		return nil, err
	}
	return FromPaths(map[string]string{"": d}, nil), nil
}

func subDir(dir, path string) (string, error) {
	for _, part := range strings.Split(path, "/") {
		if part == ".." {
			return "", fmt.Errorf("--cgroup %q: the path must stay below the container's cgroup", path)
		}
	}
	clean := filepath.Clean("/" + path)
	if clean == "/" {
		return "", fmt.Errorf("--cgroup %q: name a sub-cgroup, not the container's own", path)
	}
	d := filepath.Join(dir, clean)
	st, err := os.Stat(d)
	if err != nil {
		return "", fmt.Errorf("--cgroup %q: sub-cgroup %s: %w", path, d, err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("--cgroup %q: %s is not a cgroup directory", path, d)
	}
	return d, nil
}
