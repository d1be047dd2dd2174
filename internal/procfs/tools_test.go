package procfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lkc-containers/lkc/internal/testutil"
)

// TestToolsReadRenderedFiles runs the tools people use to look at a
// machine (procps free, top, uptime, vmstat, swapon, glibc's processor
// count) in a private mount namespace where the rendered files are
// bind-mounted over the real ones, as the /proc view mounts them in a
// container: each must parse them and show the container's numbers.
// (busybox free and uptime, and coreutils nproc, ask the kernel through
// sysinfo and sched_getaffinity instead: the seccomp agent's part.)
func TestToolsReadRenderedFiles(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.RequiresBinary(t, "unshare")
	f := newFixture(t)
	f.v1()
	out := t.TempDir()
	var script strings.Builder
	for _, name := range Files {
		p := filepath.Join(out, strings.ReplaceAll(name, "/", "_"))
		if err := os.WriteFile(p, []byte(f.render(name)), 0o444); err != nil {
			t.Fatal(err)
		}
		script.WriteString("mount --bind " + p + " /" + name + " || exit 1\n")
	}
	tools := []struct {
		cmd  string
		want []string
	}{
		{"free -k", []string{`(?m)^Mem:\s+65536\s+\d+\s+55296\s`, `(?m)^Swap:\s+32768\s+2048\s+30720$`}},
		{"top -bn1 -E k", []string{`up 1 min`, `load average: 0\.00, 0\.00, 0\.00`, `KiB Mem :\s+65536 total,\s+55296 free`,
			`KiB Swap:\s+32768 total,\s+30720 free`, `%Cpu\(s\):`}},
		{"uptime", []string{`up 1 min,.*load average: 0\.00, 0\.00, 0\.00`}},
		{"getconf _NPROCESSORS_ONLN", []string{`(?m)^1$`}},
		{"vmstat -s", []string{`(?m)^\s*65536 K total memory$`, `(?m)^\s*55296 K free memory$`, `(?m)^\s*32768 K total swap$`,
			`(?m)^\s*3000 non-nice user cpu ticks$`, `(?m)^\s*6600 idle cpu ticks$`, `(?m)^\s*7 forks$`,
			`(?m)^\s*40 K paged in$`, `(?m)^\s*80 K paged out$`}},
		{"vmstat", []string{`(?m)^(\s+\d+){6}\s+0\s+0\s+\d\s+\d\s`}}, // kB/s since the start: 40 and 80 kB in 100 s
		{"swapon --show=NAME,TYPE,SIZE,USED,PRIO --bytes --noheadings", []string{`(?m)^none\s+virtual\s+33554432\s+2097152\s+-1$`}},
		{"grep -c ^processor /proc/cpuinfo", []string{`(?m)^1$`}},
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(strings.Fields(tool.cmd)[0]); err != nil {
			t.Errorf("%s is not installed (scripts/deps.sh installs it)", tool.cmd)
			continue
		}
		cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script.String()+"exec "+tool.cmd)
		cmd.Env = append(os.Environ(), "TERM=dumb", "COLUMNS=200")
		got, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", tool.cmd, err, got)
			continue
		}
		for _, want := range tool.want {
			if !regexp.MustCompile(want).Match(got) {
				t.Errorf("%s: output lacks %s:\n%s", tool.cmd, want, got)
			}
		}
	}
}
