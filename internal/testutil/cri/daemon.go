package cri

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Daemon is a containerd started with its config, root, state, sockets
// and opt directory under Dir.
type Daemon struct {
	Build Build
	Dir   string
	Addr  string // its gRPC socket
	cmd   *exec.Cmd
	exit  chan error
}

// Start starts b in dir, which the caller made (a unix socket path must
// stay under 108 bytes: keep it short), with its log in dir/containerd.log,
// and waits up to 20 s for it to answer. On failure nothing of it runs.
func Start(b Build, dir string) (*Daemon, error) {
	d := &Daemon{Build: b, Dir: dir, Addr: filepath.Join(dir, "containerd.sock"), exit: make(chan error, 1)}
	conf := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(conf, []byte(b.Config(dir)), 0o644); err != nil {
		return nil, fmt.Errorf("writing containerd config: %w", err)
	}
	log, err := os.Create(d.Log())
	if err != nil {
		return nil, fmt.Errorf("creating containerd log: %w", err)
	}
	defer log.Close()
	d.cmd = exec.Command(b.Daemon, "--config", conf)
	if b.ShimDir != "" {
		d.cmd.Env = append(os.Environ(), "PATH="+b.ShimDir+":"+os.Getenv("PATH"))
	}
	d.cmd.Stdout, d.cmd.Stderr = log, log
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", b.Daemon, err)
	}
	go func() { d.exit <- d.cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for d.Ctr("default", "version") != nil {
		if time.Now().After(deadline) {
			d.Stop()
			data, _ := os.ReadFile(d.Log())
			return nil, fmt.Errorf("containerd %s did not answer on %s within 20s; log:\n%s", b.Name, d.Addr, lastLines(string(data), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return d, nil
}

// Log is the daemon's log file.
func (d *Daemon) Log() string { return filepath.Join(d.Dir, "containerd.log") }

// Pid is the daemon's process id.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Ctr runs ctr against the daemon in namespace ns, for at most a minute.
func (d *Daemon) Ctr(ns string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args = append([]string{"--address", d.Addr, "-n", ns}, args...)
	if out, err := exec.CommandContext(ctx, d.Build.Ctr, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Stop stops the daemon with SIGTERM (SIGKILL 15 s on), then kills the
// shims and unmounts the root filesystems that outlived it. It returns
// one line for each of those: they are the caller's leaks.
func (d *Daemon) Stop() []string {
	var leaks []string
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exit:
	case <-time.After(15 * time.Second):
		leaks = append(leaks, "containerd did not exit within 15s of SIGTERM; killed it")
		d.cmd.Process.Kill()
		<-d.exit
	}
	for _, pid := range ProcessesMentioning(d.Addr) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		leaks = append(leaks, fmt.Sprintf("process %d still running for containerd at %s (a shim?): %s; killed it", pid, d.Addr, cmdline))
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, m := range MountsUnder(d.Dir) {
		leak := m + " still mounted after containerd stopped; unmounted it"
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			leak = fmt.Sprintf("%s still mounted after containerd stopped; unmounting it: %v", m, err)
		}
		leaks = append(leaks, leak)
	}
	return leaks
}

// MountsUnder lists the mount points beneath dir, deepest first.
func MountsUnder(dir string) []string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// ProcessesMentioning lists the pids, other than this process's, whose
// command line contains s.
func ProcessesMentioning(s string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); strings.Contains(string(cmdline), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
