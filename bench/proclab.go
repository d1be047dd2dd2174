package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procFiles are the files a virtual /proc replaces, by short name.
var procFiles = []struct{ name, path string }{
	{"meminfo", "/proc/meminfo"}, {"cpuinfo", "/proc/cpuinfo"}, {"stat", "/proc/stat"},
	{"uptime", "/proc/uptime"}, {"loadavg", "/proc/loadavg"}, {"diskstats", "/proc/diskstats"},
	{"swaps", "/proc/swaps"}, {"online", "/sys/devices/system/cpu/online"},
}

// The three ways a container's /proc is served, one probe container each.
const (
	procNative = "native"
	procLxcfs  = "lxcfs"
	procLKC    = "lkc"
)

const (
	readerPath   = "/lkc-bench"    // this binary inside the shared rootfs
	lxcfsAltRoot = "/lxcfs"        // where load containers see lxcfs's files
	pollInterval = "100ms"         // a `top` in each load container
	probeMemory  = int64(64 << 20) // the probes' limits, so that a view differs from the host's
	probeQuota   = int64(50000)
	probePeriod  = int64(100000)
)

// procLab is what a proc scenario's variants share: a private lxcfs, one
// probe container per way of serving /proc, and the load containers. The
// first Prepare sets it up; the last Cleanup takes it down.
type procLab struct {
	env      *Env
	name     string
	load     int
	once     sync.Once
	err      error
	mu       sync.Mutex
	users    int
	rt       *ociRuntime
	lxcfs    *exec.Cmd
	lxcfsDir string
	// lxcfsRun says lxcfs made its runtime directory (lxcfsRunDir) in this
	// run, so stopping it removes what it leaves there.
	lxcfsRun bool
	probes   map[string]*readerClient
	rss      map[string]int64 // the largest RSS seen per server, kB
}

func newProcLab(env *Env, name string, load int) *procLab {
	return &procLab{env: env, name: name, load: load, probes: map[string]*readerClient{}, rss: map[string]int64{}}
}

// acquire sets the lab up once and counts one more user.
func (l *procLab) acquire() (string, error) {
	l.once.Do(func() {
		if l.err = l.setup(); l.err != nil {
			l.teardown()
		}
	})
	if l.err != nil {
		return "", l.err
	}
	l.mu.Lock()
	l.users++
	l.mu.Unlock()
	return fmt.Sprintf("lxcfs %s at %s; %d load containers", lxcfsVersion(), l.lxcfsDir, l.load), nil
}

// release takes the lab down when its last user is done.
func (l *procLab) release() error {
	l.mu.Lock()
	l.users--
	last := l.users == 0
	l.mu.Unlock()
	if !last {
		return nil
	}
	l.reportRSS()
	return l.teardown()
}

func (l *procLab) setup() error {
	l.rt = &ociRuntime{name: "lkc", bin: l.env.LKC, root: filepath.Join(l.env.Dir, "state-"+l.name)}
	if _, err := l.rt.prepare(); err != nil {
		return err
	}
	if err := installReader(l.env); err != nil {
		return err
	}
	if err := l.startLxcfs(); err != nil {
		return err
	}
	for _, tool := range []string{procNative, procLxcfs, procLKC} {
		c, err := l.startProbe(tool)
		if err != nil {
			return err
		}
		l.probes[tool] = c
	}
	for i := range l.load {
		if err := l.startLoad(i); err != nil {
			return err
		}
	}
	return nil
}

func (l *procLab) teardown() error {
	for _, c := range l.probes {
		c.close()
	}
	var errs []error
	if l.rt != nil {
		errs = append(errs, l.rt.deleteAll(l.env.IDPrefix))
	}
	errs = append(errs, l.stopLxcfs())
	return errors.Join(errs...)
}

// installReader copies this (static) executable into the shared rootfs.
func installReader(env *Env) error {
	dst := filepath.Join(env.Rootfs, readerPath)
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	data, err := os.ReadFile(env.Self)
	if err != nil {
		return fmt.Errorf("reading own executable: %w", err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		return fmt.Errorf("installing the reader: %w", err)
	}
	for _, f := range procFiles {
		p := filepath.Join(env.Rootfs, lxcfsAltRoot, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("creating mount point: %w", err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return fmt.Errorf("creating mount point: %w", err)
		}
	}
	return nil
}

// lxcfsRunDir is lxcfs's runtime directory; it leaves empty directories
// there when it ends.
const lxcfsRunDir = "/run/lxcfs"

// startLxcfs runs lxcfs in the foreground on a private directory, with
// load averages on (-l) as LXC hosts that want loadavg run it.
func (l *procLab) startLxcfs() error {
	if _, err := os.Lstat(lxcfsRunDir); errors.Is(err, os.ErrNotExist) {
		l.lxcfsRun = true
	}
	l.lxcfsDir = filepath.Join(l.env.Dir, "lxcfs-"+l.name)
	if err := os.MkdirAll(l.lxcfsDir, 0o755); err != nil {
		return fmt.Errorf("creating lxcfs directory: %w", err)
	}
	log, err := os.Create(l.lxcfsDir + ".log")
	if err != nil {
		return fmt.Errorf("creating lxcfs log: %w", err)
	}
	defer log.Close()
	cmd := exec.Command("lxcfs", "-f", "-l", "-p", l.lxcfsDir+".pid", l.lxcfsDir)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting lxcfs (scripts/deps.sh installs it): %w", err)
	}
	l.lxcfs = cmd
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(l.lxcfsDir, "proc/meminfo")); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(l.lxcfsDir + ".log")
			return fmt.Errorf("lxcfs did not mount %s: %s", l.lxcfsDir, strings.TrimSpace(string(out)))
		}
	}
}

// stopLxcfs ends lxcfs (it unmounts itself on SIGTERM) and detaches the
// mount should it not have.
func (l *procLab) stopLxcfs() error {
	if l.lxcfs == nil {
		return nil
	}
	l.lxcfs.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- l.lxcfs.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		l.lxcfs.Process.Kill()
		<-done
	}
	l.lxcfs = nil
	if err := syscall.Unmount(l.lxcfsDir, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("unmounting %s: %w", l.lxcfsDir, err)
	}
	if l.lxcfsRun {
		// Its empty directories only: Remove fails on anything more.
		for _, d := range []string{"controllers", "root", ""} {
			if err := os.Remove(filepath.Join(lxcfsRunDir, d)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("removing what lxcfs left: %w", err)
			}
		}
	}
	return nil
}

func lxcfsVersion() string {
	out, _ := exec.Command("lxcfs", "--version").Output()
	return strings.TrimSpace(string(out))
}

// writeProcBundle writes a bundle running args with the probes' limits;
// tool decides how /proc is served: lkc's annotation, lxcfs's files bound
// over the kernel's as LXC does (at lxcfsAltRoot instead for a load
// container, which has lkc's view too), or nothing.
func (l *procLab) writeProcBundle(dir, tool string, load bool, args []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating bundle %s: %w", dir, err)
	}
	return editConfig(filepath.Join(l.env.Bundle, "config.json"), filepath.Join(dir, "config.json"),
		func(spec map[string]any) error {
			if err := setSleepProcess(spec, l.env.Rootfs); err != nil {
				return err
			}
			proc := spec["process"].(map[string]any)
			proc["args"] = args
			env, _ := proc["env"].([]any)
			proc["env"] = append(env, roleEnv+"="+roleReader, "GOMAXPROCS=1")
			linux, _ := spec["linux"].(map[string]any)
			linux["resources"] = map[string]any{
				"memory": map[string]any{"limit": probeMemory},
				"cpu":    map[string]any{"quota": probeQuota, "period": probePeriod},
			}
			if tool == procLKC || load {
				spec["annotations"] = map[string]any{"org.lkc.proc": "virtual"}
			}
			if tool == procLxcfs || load {
				mounts, _ := spec["mounts"].([]any)
				for _, f := range procFiles {
					dst := f.path
					if load {
						dst = lxcfsAltRoot + f.path
					}
					mounts = append(mounts, map[string]any{
						"destination": dst, "type": "bind",
						"source":  filepath.Join(l.lxcfsDir, f.path),
						"options": []string{"bind", "ro"},
					})
				}
				spec["mounts"] = mounts
			}
			return nil
		})
}

// startProbe starts tool's probe container with its reader on pipes.
func (l *procLab) startProbe(tool string) (*readerClient, error) {
	id := fmt.Sprintf("%s-%s-%s", l.env.IDPrefix, l.name, tool)
	bundle := filepath.Join(l.env.Dir, "bundle-"+l.name+"-"+tool)
	if err := l.writeProcBundle(bundle, tool, false, []string{readerPath}); err != nil {
		return nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	err = l.runDetached(id, bundle, inR, outW)
	inR.Close()
	outW.Close()
	c := &readerClient{w: inW, r: bufio.NewReader(outR), out: outR}
	if err != nil {
		c.close()
		return nil, err
	}
	for _, f := range procFiles { // every file answers before anything is timed
		if _, err := c.ask("r " + f.path); err != nil {
			c.close()
			return nil, fmt.Errorf("%s probe: %w", tool, err)
		}
	}
	return c, nil
}

func (l *procLab) startLoad(i int) error {
	id := fmt.Sprintf("%s-%s-load%d", l.env.IDPrefix, l.name, i)
	bundle := filepath.Join(l.env.Dir, "bundle-"+l.name+"-load")
	if i == 0 {
		args := []string{readerPath, "poll", pollInterval, "/proc/meminfo", "/proc/stat",
			lxcfsAltRoot + "/proc/meminfo", lxcfsAltRoot + "/proc/stat"}
		if err := l.writeProcBundle(bundle, procLKC, true, args); err != nil {
			return err
		}
	}
	return l.runDetached(id, bundle, l.env.runner.null, l.env.runner.null)
}

// runDetached runs "lkc run -d" with the container's stdin and stdout.
func (l *procLab) runDetached(id, bundle string, stdin, stdout *os.File) error {
	logPath := filepath.Join(l.env.Dir, "run-d-"+id+".log")
	log, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("creating %s: %w", logPath, err)
	}
	defer log.Close()
	ctx, cancel := context.WithTimeout(context.Background(), l.env.Timeout)
	defer cancel()
	cmd := l.rt.command(ctx, "run", "-d", "--bundle", bundle, id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, log
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(logPath)
		return fmt.Errorf("lkc run -d %s: %w: %s", id, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// serverPids returns the processes that serve tool's files.
func (l *procLab) serverPids(tool string) ([]int, error) {
	if tool == procLxcfs {
		return []int{l.lxcfs.Process.Pid}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.env.Timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, l.env.LKC, "daemon", "status", "--json").Output()
	if err != nil {
		return nil, fmt.Errorf("lkc daemon status: %w", err)
	}
	var st struct {
		HolderPid int `json:"holderPid"`
		WorkerPid int `json:"workerPid"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("lkc daemon status: %w", err)
	}
	return []int{st.WorkerPid, st.HolderPid}, nil
}

// serverUsage returns the CPU time the processes used so far and their
// resident memory in kB.
func serverUsage(pids []int) (time.Duration, int64, error) {
	var cpu time.Duration
	var rss int64
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, 0, fmt.Errorf("server %d: %w", pid, err)
		}
		_, rest, _ := strings.Cut(string(stat), ") ")
		f := strings.Fields(rest) // f[0] is field 3 (state)
		if len(f) < 22 {
			return 0, 0, fmt.Errorf("server %d: short stat", pid)
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		cpu += time.Duration(utime+stime) * time.Second / 100 // USER_HZ
		pages, _ := strconv.ParseInt(f[21], 10, 64)
		rss += pages * int64(os.Getpagesize()) / 1024
	}
	return cpu, rss, nil
}

// reportRSS prints the largest RSS each server had while measured.
func (l *procLab) reportRSS() {
	for tool, kb := range l.rss {
		fmt.Fprintf(os.Stderr, "bench: %s: %s server's largest RSS while measured: %.1f MiB\n", l.name, tool, float64(kb)/1024)
	}
}
