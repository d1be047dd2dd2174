package cgroups

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lkc-containers/lkc/internal/config"
)

// v2 is a container's cgroup on the unified hierarchy.
type v2 struct {
	root    string
	dir     string
	made    []string // dir, when Create made it
	parents []string // the directories above dir Create made
	created bool     // Create ran: Destroy removes only made
}

func newV2(h Host, own, path string) *v2 {
	return &v2{root: h.Root, dir: under(h.Root, own, path)}
}

func (m *v2) Paths() map[string]string { return map[string]string{"": m.dir} }

// Create makes the directories and enables, in each new parent, the
// controllers its parent offers, so limits can be set on the leaf.
func (m *v2) Create() error {
	base := filepath.Dir(m.dir)
	for !strings.HasPrefix(m.dir, base) || !exists(base) {
		base = filepath.Dir(base)
	}
	made, err := mkdirTracked(base, m.dir)
	m.made, m.parents = splitMade(made, m.dir)
	m.created = true
	if err != nil {
		return err
	}
	for _, dir := range append([]string{base}, m.parents...) {
		if err := enableControllers(dir); err != nil {
			return err
		}
	}
	return nil
}

func enableControllers(dir string) error {
	avail, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		return fmt.Errorf("reading %s/cgroup.controllers: %w", dir, err)
	}
	enabled, _ := readFile(dir, "cgroup.subtree_control")
	var add []string
	for _, c := range strings.Fields(avail) {
		if !strings.Contains(" "+enabled+" ", " "+c+" ") {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	return writeFile(dir, "cgroup.subtree_control", strings.Join(add, " "))
}

func (m *v2) Placement() ([]string, string) { return nil, m.dir }

// Set writes every limit r sets, attaches the device program for r.Devices
// (devices_v2.go), then writes the unified files, so these win.
// Settings v2 has no file for are left to Ignored, as runc ignores them.
func (m *v2) Set(r *config.Resources) error {
	w, err := m.plan(r)
	if err != nil {
		return err
	}
	return applyAll(w)
}

// plan lists the writes of r in Set's order.
func (m *v2) plan(r *config.Resources) ([]write, error) {
	cpu, err := setV2CPU(r)
	if err != nil {
		return nil, err
	}
	unified, err := unifiedSettings(r.Unified)
	if err != nil {
		return nil, err
	}
	s := append(setV2Memory(r), cpu...)
	s = append(s, m.setV2IO(r)...)
	s = append(s, setV2Misc(r)...)
	var w []write
	for _, set := range s {
		w = append(w, write{setting: set, dir: m.dir})
	}
	if len(r.Devices) > 0 {
		rules := r.Devices
		w = append(w, write{setting: setting{key: "devices"}, dir: m.dir,
			apply: func() error { return setDevices(m.dir, rules) }})
	}
	for _, set := range unified {
		w = append(w, write{setting: set, dir: m.dir})
	}
	return w, nil
}

func maxValue(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// sharesToWeight maps cpu.shares [2, 262144] onto cpu.weight [1, 10000] as
// runc and crun do.
func sharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 100
	}
	return 1 + ((shares-2)*9999)/262142
}

func cpuMax(quota *int64, period *uint64) string {
	q, p := "max", "100000"
	if quota != nil && *quota > 0 {
		q = strconv.FormatInt(*quota, 10)
	}
	if period != nil && *period > 0 {
		p = strconv.FormatUint(*period, 10)
	}
	return q + " " + p
}

func (m *v2) Procs() ([]int, error) { return readProcs(m.dir) }

func (m *v2) Freeze() error { return m.setFrozen("1") }
func (m *v2) Thaw() error   { return m.setFrozen("0") }

func (m *v2) setFrozen(v string) error {
	if err := writeFile(m.dir, "cgroup.freeze", v); err != nil {
		return err
	}
	return waitFor("cgroup.freeze "+v+" in "+m.dir, func() (bool, error) {
		events, err := readFile(m.dir, "cgroup.events")
		return err != nil || strings.Contains(events, "frozen "+v), err
	})
}

func (m *v2) Frozen() (bool, error) {
	v, err := readFile(m.dir, "cgroup.freeze")
	return v == "1", err
}

func (m *v2) FreezerFile() string { return filepath.Join(m.dir, "cgroup.freeze") }

func (m *v2) Parents() []string { return m.parents }

func (m *v2) Destroy() error {
	var err error
	if m.created {
		err = rmdirMade(m.made)
	} else {
		err = removeTree(m.dir)
	}
	if err != nil {
		return err
	}
	return removeParents(m.parents)
}
