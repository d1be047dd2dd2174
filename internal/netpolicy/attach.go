package netpolicy

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// hybridUnified is where a hybrid host mounts the cgroup v2 hierarchy
// beside the v1 controllers.
var hybridUnified = "/sys/fs/cgroup/unified"

// ownCgroupFile, in the container's state directory, names the cgroup v2
// directory Enforce made for it on a hybrid host, for Release.
const ownCgroupFile = "netpolicy-cgroup"

// ErrNoCgroup2 says the host has no cgroup v2 hierarchy to attach to.
var ErrNoCgroup2 = errors.New("needs a cgroup v2 hierarchy (pure v2, or v1 with the unified mount at /sys/fs/cgroup/unified)")

// attachType is a cgroup sock_addr attach point (enum bpf_attach_type).
type attachType uint32

// hooks are the attach points of each hook, IPv4 then IPv6.
var hooks = map[Hook][2]attachType{
	Connect: {unix.BPF_CGROUP_INET4_CONNECT, unix.BPF_CGROUP_INET6_CONNECT},
	Bind:    {unix.BPF_CGROUP_INET4_BIND, unix.BPF_CGROUP_INET6_BIND},
}

// sendmsg hooks carry the connect rules to UDP datagrams sent without a
// connect.
var sendmsg = [2]attachType{unix.BPF_CGROUP_UDP4_SENDMSG, unix.BPF_CGROUP_UDP6_SENDMSG}

// String is the attach point's name as bpftool and ELF sections call it.
func (t attachType) String() string {
	switch t {
	case unix.BPF_CGROUP_INET4_CONNECT:
		return "connect4"
	case unix.BPF_CGROUP_INET6_CONNECT:
		return "connect6"
	case unix.BPF_CGROUP_INET4_BIND:
		return "bind4"
	case unix.BPF_CGROUP_INET6_BIND:
		return "bind6"
	case unix.BPF_CGROUP_UDP4_SENDMSG:
		return "sendmsg4"
	case unix.BPF_CGROUP_UDP6_SENDMSG:
		return "sendmsg6"
	case unix.BPF_CGROUP_INET_SOCK_CREATE:
		return "sock_create"
	case unix.BPF_CGROUP_INET6_POST_BIND:
		return "post_bind6"
	}
	return fmt.Sprintf("attach type %d", uint32(t))
}

// CheckHost refuses, before anything is made, a host where a policy cannot
// be enforced.
func CheckHost(v2Dir string) error {
	if v2Dir != "" {
		return nil
	}
	if _, err := os.Stat(filepath.Join(hybridUnified, "cgroup.controllers")); err != nil {
		return fmt.Errorf("annotation %s: %w", Annotation, ErrNoCgroup2)
	}
	return nil
}

// Enforce attaches p to the cgroup v2 directory the container's processes
// are in: v2Dir, its cgroup on a v2 host; on a hybrid host ("" v2Dir) a
// directory of its own in the unified hierarchy, beneath lkc's, which
// init (pid) is moved into before it starts the user's process, so that
// all of them are in it (pid 0 moves none: a restore moves its tasks with
// Join). Release removes that directory. The programs are attached with
// BPF_F_ALLOW_MULTI: programs a sub-cgroup adds run as well, never
// instead.
func Enforce(p *Policy, stateDir string, pid int, v2Dir string) error {
	dir := v2Dir
	if dir == "" {
		var err error
		if dir, err = ownCgroup(stateDir, pid); err != nil {
			return fmt.Errorf("annotation %s: %w", Annotation, err)
		}
	}
	if err := attach(p, dir); err != nil {
		return fmt.Errorf("annotation %s: %w", Annotation, err)
	}
	return nil
}

func attach(p *Policy, dir string) error {
	cg, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer cg.Close()
	var v6only *sockBit
	if p.v6onlyMatters() {
		if v6only, err = p.attachPostBind6(cg); err != nil {
			return err
		}
	}
	for _, hook := range []Hook{Connect, Bind} {
		for fam, at := range hooks[hook] {
			if p.DefaultAllow && !p.has(hook) {
				continue // every call of this hook is allowed
			}
			var bit *sockBit
			if hook == Bind && fam == 1 {
				bit = v6only
			}
			code, err := assemble(p.compile(hook, fam == 1, bit))
			if err != nil {
				return fmt.Errorf("assembling the %s program: %w", at, err)
			}
			types := []attachType{at}
			if hook == Connect {
				types = append(types, sendmsg[fam])
			}
			for _, t := range types {
				if err := load(cg, t, code); err != nil {
					return err
				}
			}
		}
	}
	if p.DefaultAllow && !p.has(Connect) {
		return nil
	}
	code, err := assemble(sockCreate())
	if err != nil {
		return fmt.Errorf("assembling the sock_create program: %w", err)
	}
	return load(cg, unix.BPF_CGROUP_INET_SOCK_CREATE, code)
}

// attachPostBind6 attaches the post-bind program of the IPv6 sockets
// (postBind6) and returns where the socket keeps IPV6_V6ONLY, for the
// bind6 program. When the kernel does not say where (no BTF), or refuses
// a program that reads it (bpf_probe_read_kernel needs CAP_PERFMON, and
// a kernel locked down for confidentiality gives it to none), it returns
// nil and attaches nothing: bind6 then takes every :: bind as
// dual-stack, refusing more than the rules say, never less.
func (p *Policy) attachPostBind6(cg *os.File) (*sockBit, error) {
	bit, err := v6onlyBit()
	if err != nil {
		return nil, nil
	}
	const at = unix.BPF_CGROUP_INET6_POST_BIND
	code, err := assemble(p.postBind6(bit))
	if err != nil {
		return nil, fmt.Errorf("assembling the %s program: %w", attachType(at), err)
	}
	prog, err := loadProg(at, code)
	if err != nil {
		return nil, nil
	}
	defer unix.Close(prog)
	if err := attachProg(int(cg.Fd()), prog, at, unix.BPF_F_ALLOW_MULTI); err != nil {
		return nil, fmt.Errorf("attaching the %s program to %s: %w", attachType(at), cg.Name(), err)
	}
	return &bit, nil
}

// load loads one program and attaches it to the cgroup cg. The attachment
// holds the program: it stays until the cgroup is removed.
func load(cg *os.File, t attachType, code []byte) error {
	prog, err := loadProg(uint32(t), code)
	if err != nil {
		return fmt.Errorf("loading the %s program: %w", t, err)
	}
	defer unix.Close(prog)
	if err := attachProg(int(cg.Fd()), prog, uint32(t), unix.BPF_F_ALLOW_MULTI); err != nil {
		return fmt.Errorf("attaching the %s program to %s: %w", t, cg.Name(), err)
	}
	return nil
}

// ownCgroup makes the container's directory in the hybrid host's unified
// hierarchy, records it, and moves pid into it.
func ownCgroup(stateDir string, pid int) (string, error) {
	self, err := selfUnified()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(filepath.Clean(stateDir)))
	dir := filepath.Join(hybridUnified, self, "lkc-netpolicy", hex.EncodeToString(sum[:8]))
	if err := mkdirShared(dir); err != nil {
		return "", fmt.Errorf("creating cgroup %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(stateDir, ownCgroupFile), []byte(dir), 0o600); err != nil {
		os.Remove(dir)
		return "", err
	}
	if pid == 0 {
		return dir, nil
	}
	if err := Join(dir, pid); err != nil {
		return "", err
	}
	return dir, nil
}

// Join moves process pid, all its threads, into the container's own
// directory dir (OwnCgroup).
func Join(dir string, pid int) error {
	procs := filepath.Join(dir, "cgroup.procs")
	if err := os.WriteFile(procs, []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("moving %d into %s: %w", pid, dir, err)
	}
	return nil
}

// mkdirShared makes dir and its parent, which a Release of another
// container may remove between the two: then it tries again.
func mkdirShared(dir string) error {
	var err error
	for try := 0; try < 3; try++ {
		if err = os.MkdirAll(dir, 0o755); !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return err
}

// selfUnified is lkc's own cgroup in the unified hierarchy ("0::PATH").
func selfUnified() (string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("/proc/self/cgroup: no cgroup v2 entry")
}

// OwnCgroup returns the directory Enforce made for the container in
// stateDir on a hybrid host, if it did: processes exec'd into the
// container must join it too.
func OwnCgroup(stateDir string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(stateDir, ownCgroupFile))
	return string(b), err == nil
}

// Release removes the directory Enforce made on a hybrid host, once the
// container's processes are gone (the programs go with it), and its
// parent when no other container uses it.
func Release(stateDir string) error {
	rec := filepath.Join(stateDir, ownCgroupFile)
	b, err := os.ReadFile(rec)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	dir := string(b)
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing cgroup %s: %w", dir, err)
	}
	os.Remove(filepath.Dir(dir)) // busy while other containers use it
	return os.Remove(rec)
}
