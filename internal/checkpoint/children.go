package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Children lists the children of every thread of process pid, or of the
// caller with pid 0 (a child belongs to the thread that forked it): the
// CRIU runs lkc started, or the helpers a CRIU started.
func Children(pid int) []int {
	proc := "self"
	if pid != 0 {
		proc = strconv.Itoa(pid)
	}
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%s/task/*/children", proc))
	var pids []int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(data)) {
			if child, err := strconv.Atoi(s); err == nil {
				pids = append(pids, child)
			}
		}
	}
	return pids
}
