package cr

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lkc-containers/lkc/internal/procfs"
	"github.com/lkc-containers/lkc/internal/state"
)

// procCarryFile keeps, in the images, what the container's virtual /proc
// (org.lkc.proc=virtual) showed at the dump: how long it had run, its
// CPU times, and its last pid and processes (restore_pids.go). The restored container has a new init and new cgroups, from
// which its view would start again at zero; with this it goes on from the
// checkpoint (state.Carried, docs/procfs.md).
const procCarryFile = "proc.json"

// saveProcCarry writes procCarryFile for the frozen container. It is
// best-effort, as the view itself is: a container whose counters cannot
// be read (no cpuacct controller) gets none, and its restored view starts
// again from zero.
func (c subject) saveProcCarry(imageDir string) {
	st := c.Record()
	pc, err := procfs.ContainerFromState(&st)
	if err != nil {
		return
	}
	carried, err := procfs.Default.Carry(pc)
	if err != nil {
		return
	}
	if last, processes, ok := viewPids(c.Config()); ok {
		carried.LastPid, carried.Processes = last, processes
	}
	if data, err := json.Marshal(carried); err == nil {
		os.WriteFile(filepath.Join(imageDir, procCarryFile), data, 0o600)
	}
}

// loadProcCarry reads procCarryFile; nil when the images have none (a
// checkpoint by an older lkc, or one whose counters could not be read).
func loadProcCarry(imageDir string) (*state.Carried, error) {
	data, err := os.ReadFile(filepath.Join(imageDir, procCarryFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the /proc view's counters: %w", err)
	}
	var c state.Carried
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", procCarryFile, err)
	}
	return &c, nil
}
