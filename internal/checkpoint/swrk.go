package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/rpc"
	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/steplog"
)

// Notify is called for each notification CRIU sends while it works
// ("post-dump", "setup-namespaces", "post-restore", "orphan-pts-master",
// "status-ready", ...): pid is the root task where CRIU gives one, fd a
// file CRIU passed along (the pts master), else nil; Notify owns it. An
// error aborts the operation.
type Notify func(script string, pid int, fd *os.File) error

// Request is one request to a `criu swrk` of its own.
type Request struct {
	Opts   *Opts
	Stdio  [3]*os.File // CRIU's fds 0-2 (a restore's tasks may inherit them); nil is /dev/null
	Notify Notify
	// Log is the log file CRIU writes (Opts.LogFile in the work dir), quoted
	// in errors.
	Log string
	// Abort, when it delivers an error, stops CRIU: a lazy restore whose
	// lazy-pages daemon died would otherwise wait forever on a page.
	Abort <-chan error
	// Cgroups, for a restore whose tasks all go to the container's own v1
	// cgroups (no sub-cgroups), are those cgroups' `tasks` files: CRIU
	// starts in them, so that the tasks it forks are born there, and is
	// told to leave cgroups alone (--manage-cgroups-mode ignore). CgroupNS
	// gives it a cgroup namespace rooted there as well, the one the
	// container had. Where lkc cannot start it so, CRIU moves the tasks
	// itself, as the request's mode says.
	Cgroups  []string
	CgroupNS bool
	// NetNS, when not nil, is the network namespace CRIU starts in: the
	// container's own, which CRIU then neither dumps nor restores (lkc
	// carries it, and the restored tasks are born in it).
	NetNS *os.File
	// Affinity, when not nil, holds CRIU on these CPUs until it reports its
	// images written ("status-ready") or ends; then it may run where lkc
	// may (a lazy dump goes on serving pages).
	Affinity *unix.CPUSet
	// PageServer, when not nil, is a dump's connection to its page server
	// (DialPageServer): CRIU sends the pages on it, and a failure says so
	// when the page server went away.
	PageServer *PageServerConn
	// Worker, when not nil, is a CRIU started ahead (StartWorker): the
	// request uses it if it was started for what the request asks, and
	// stops it otherwise.
	Worker *Worker

	typ     rpc.CriuReqType
	criuPid int // the CRIU carrying the request out, once it runs
	feat    *Features
	extra   []*os.File // CRIU's fds 4, 5, ... (3 is the RPC socket)
}

// CriuPid is the pid of the CRIU carrying c out, for its notifications
// (Notify) to act on that process; 0 before it runs.
func (c *Request) CriuPid() int { return c.criuPid }

// AddFile passes f to CRIU and returns the fd number it has there, for
// InheritFd and StatusFd.
func (c *Request) AddFile(f *os.File) int {
	c.extra = append(c.extra, f)
	return 3 + len(c.extra)
}

// run has CRIU carry out c: through c.Worker when it was started for
// what c asks, else through a `criu swrk 3` started now. It answers CRIU's
// notifications and returns the final response.
func (cr *Criu) run(c *Request) (*rpc.CriuResp, error) {
	w := c.Worker
	c.Worker = nil
	if w != nil && !w.fits(c) {
		w.Stop()
		w = nil
	}
	if w == nil {
		var err error
		if w, err = cr.StartWorker(c); err != nil {
			return nil, err
		}
	} else {
		w.adopt(c)
	}
	defer w.Stop()
	pid := w.cmd.Process.Pid
	c.criuPid = pid
	if steplog.On() {
		logRequest(c, w)
		defer steplog.Step("criu " + typeName(c.typ))()
	}
	if c.Affinity != nil {
		// Best effort: a CRIU left unpinned only runs slower.
		unix.SchedSetaffinity(pid, c.Affinity)
	}
	finished := make(chan struct{})
	var aborted error
	if c.Abort != nil {
		go func() {
			select {
			case aborted = <-c.Abort:
				w.cmd.Process.Kill()
			case <-finished:
			}
		}()
	}
	resp, err := converse(w.sock, pid, c)
	close(finished)
	werr := w.finish()
	if err != nil && aborted != nil {
		if c.Log != "" {
			unmountYard(filepath.Dir(c.Log))
		}
		// What stopped CRIU is the failure; CRIU's own log only says
		// what it was doing when it was killed.
		return nil, fmt.Errorf("%w (criu %s stopped; its log: %s)", aborted, typeName(c.typ), c.Log)
	}
	if errors.As(err, new(notifyError)) {
		// lkc's own failure: CRIU's log only says the script failed.
		return nil, err
	}
	if err != nil {
		return nil, c.explain(err)
	}
	if werr != nil && c.typ != reqPreDump {
		return nil, c.explain(fmt.Errorf("criu: %w", werr))
	}
	return resp, nil
}

// logRequest logs, for --debug, the CRIU command line that carries out c
// and the options c sends it over swrk.
func logRequest(c *Request, w *Worker) {
	steplog.Printf("criu %s: command line %s (pid %d)", typeName(c.typ), strings.Join(w.cmd.Args, " "), w.cmd.Process.Pid)
	opts, _ := json.Marshal(c.Opts)
	steplog.Printf("criu %s: swrk request options %s", typeName(c.typ), opts)
}

// typeName names a request type as CRIU's RPC does.
func typeName(typ rpc.CriuReqType) string {
	switch typ {
	case reqDump:
		return "dump"
	case reqRestore:
		return "restore"
	case reqPreDump:
		return "pre-dump"
	}
	return fmt.Sprintf("request %d", typ)
}

func converse(sock, pid int, c *Request) (*rpc.CriuResp, error) {
	req := &request{typ: c.typ, opts: c.Opts, features: c.feat}
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		msg, err := req.marshal()
		if err != nil {
			return nil, err
		}
		if _, err := unix.Write(sock, msg); err != nil {
			return nil, fmt.Errorf("sending request to criu: %w", err)
		}
		n, oobn, err := recvmsg(sock, buf, oob)
		if err != nil {
			return nil, fmt.Errorf("reading criu's answer: %w", err)
		}
		if n == 0 {
			return nil, errors.New("criu exited without an answer")
		}
		resp, err := unmarshalResponse(buf[:n])
		if err != nil {
			return nil, err
		}
		fd := passedFile(oob[:oobn])
		if !resp.GetSuccess() {
			if fd != nil {
				fd.Close()
			}
			msg := resp.GetCrErrmsg()
			if msg == "" && resp.GetCrErrno() != 0 {
				msg = unix.Errno(resp.GetCrErrno()).Error()
			}
			return resp, errors.New(strings.TrimSpace(msg))
		}
		if resp.GetType() != reqNotify {
			return resp, nil
		}
		script := resp.GetNotify().GetScript()
		if script == "status-ready" && c.Affinity != nil {
			var own unix.CPUSet
			if unix.SchedGetaffinity(0, &own) == nil {
				unix.SchedSetaffinity(pid, &own)
			}
		}
		if c.Notify == nil {
			if fd != nil {
				fd.Close()
			}
		} else if err := c.Notify(script, int(resp.GetNotify().GetPid()), fd); err != nil {
			return nil, notifyError{fmt.Errorf("%s: %w", script, err)}
		}
		req = &request{typ: reqNotify, notifySuccess: true}
	}
}

func recvmsg(sock int, buf, oob []byte) (int, int, error) {
	for {
		n, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			return n, oobn, err
		}
	}
}

// passedFile returns the first fd of an SCM_RIGHTS message, closing others.
func passedFile(oob []byte) *os.File {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var f *os.File
	for i := range msgs {
		fds, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if f == nil {
				f = os.NewFile(uintptr(fd), "criu-passed-fd")
			} else {
				unix.Close(fd)
			}
		}
	}
	return f
}

// notifyError is a failure of the caller's answer to a notification
// (Request.Notify), which CRIU's log does not explain.
type notifyError struct{ error }

func (e notifyError) Unwrap() error { return e.error }

// explain replaces err with the first error CRIU logged, which says far
// more than the RPC's answer (that is the first error, even one CRIU got
// over), and says where the whole log is.
func (c *Request) explain(err error) error {
	if c.Log == "" {
		return err
	}
	if line := firstLogError(c.Log); line != "" {
		return fmt.Errorf("criu: %s%s (log: %s)", line, knownIssue(line), c.Log)
	}
	return fmt.Errorf("%w (log: %s)", err, c.Log)
}

func firstLogError(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		// "(00.012345) Error (criu/mount.c:123): mnt: ..." -> "mnt: ..."
		if i := bytes.Index(line, []byte("Error (")); i >= 0 {
			msg := string(line[i:])
			if j := strings.Index(msg, "): "); j >= 0 {
				msg = msg[j+3:]
			}
			if !ignorableLogError(msg) {
				return strings.TrimSpace(msg)
			}
		}
	}
	return ""
}

// ignorableLogError filters errors CRIU logs and then gets over, such as a
// restore failing to raise its own RLIMIT_NOFILE without CAP_SYS_RESOURCE.
func ignorableLogError(msg string) bool {
	return strings.HasPrefix(msg, "rlimit: Can't setup RLIMIT_NOFILE for self")
}

// criuEnv is lkc's environment with a PATH that reaches the sbin tools CRIU
// runs (iptables-restore for the network lock, ip, tar).
func criuEnv() []string {
	env := os.Environ()
	for i, kv := range env {
		if p, ok := strings.CutPrefix(kv, "PATH="); ok {
			if !strings.Contains(":"+p+":", ":/usr/sbin:") {
				env[i] = kv + ":/usr/local/sbin:/usr/sbin:/sbin"
			}
			return env
		}
	}
	return append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
}

// knownIssue explains CRIU failures that are not the user's doing.
func knownIssue(line string) string {
	if strings.Contains(line, "Can't get 1:16 opt: Operation not supported") {
		// Linux 6.16 restricted SO_PASSCRED to unix and netlink sockets.
		return "; CRIU before 4.2 cannot dump TCP/UDP sockets on Linux 6.16 and later (CRIU issue 2718): scripts/install-criu.sh installs 4.2"
	}
	if strings.Contains(line, "page-pipe: splice: -1: Bad file descriptor") {
		// CanServeLazyPages checks for the one cause we know.
		return "; CRIU's page server could not size its pipe: without CAP_SYS_RESOURCE, raise fs.pipe-max-size (sysctl -w fs.pipe-max-size=4194304)"
	}
	return ""
}

// unmountYard removes the cgroup "yard" a killed CRIU leaves mounted in its
// work dir (.criu.cgyard.*: the hierarchies it mounted to read and restore
// cgroups), deepest mount first.
func unmountYard(workDir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	prefix := filepath.Join(workDir, ".criu.cgyard.")
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], prefix) {
			points = append(points, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, p := range points {
		unix.Unmount(p, unix.MNT_DETACH)
	}
	yards, _ := filepath.Glob(prefix + "*")
	for _, y := range yards {
		os.RemoveAll(y)
	}
}
