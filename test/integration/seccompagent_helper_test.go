package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/procfs"
	"github.com/lkc-containers/lkc/internal/seccompagent"
	"github.com/lkc-containers/lkc/internal/state"
)

// The seccomp agent tests run internal/seccompagent in a process of its
// own (this test binary re-executed), as lkc daemon's worker will, with a
// holder played by the test: the agent's Store sends each fd to the test
// over a SOCK_SEQPACKET pair on fd 3, and a successor gets them back.
const (
	agentDirEnv  = "LKC_IT_SECCOMPAGENT" // the agent's directory: run as the agent
	agentHeldEnv = "LKC_IT_HELD"         // key=fd,... the successor inherits
	agentRootEnv = "LKC_IT_ROOT"         // the lkc root of the containers served
)

func seccompAgentMain(dir string) int {
	held := map[string]*os.File{}
	for _, kv := range strings.Split(os.Getenv(agentHeldEnv), ",") {
		key, fd, ok := strings.Cut(kv, "=")
		if n, err := strconv.Atoi(fd); ok && err == nil {
			held[key] = os.NewFile(uintptr(n), key)
		}
	}
	a, err := seccompagent.New(seccompagent.Config{
		Dir: dir, Resolver: stateResolver{root: os.Getenv(agentRootEnv)}, Store: pairStore{fd: 3}, Held: held,
		Logf: func(f string, args ...any) { fmt.Fprintf(os.Stderr, f+"\n", args...) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	if err := a.Serve(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// pairStore is the agent's end of the test's holder.
type pairStore struct{ fd int }

func (s pairStore) Put(key string, f *os.File) error {
	return unix.Sendmsg(s.fd, []byte("put "+key), unix.UnixRights(int(f.Fd())), nil, 0)
}

func (s pairStore) Drop(key string) error {
	return unix.Sendmsg(s.fd, []byte("drop "+key), nil, nil, 0)
}

// stateResolver answers with internal/procfs's sysinfo of the container
// the runtime's message names, found in lkc's state under the root the
// test gave the agent (agentRootEnv), which lkc must also have sent as the
// listener's metadata. A listener is named after the container's id, so a
// successor finds the container again from the name alone.
type stateResolver struct{ root string }

func (r stateResolver) Bind(m seccompagent.Message) (string, error) {
	if m.Metadata != r.root {
		return "", fmt.Errorf("container %s: metadata %q, want its root %s", m.ID, m.Metadata, r.root)
	}
	return m.ID, nil
}

func (r stateResolver) Sysinfo(id string, out *unix.Sysinfo_t) error {
	d, err := state.Peek(r.root, id)
	if err != nil {
		return err
	}
	s, err := d.Load()
	d.Close()
	if err != nil {
		return err
	}
	c, err := procfs.ContainerFromState(s)
	if err != nil {
		return err
	}
	return procfs.Sysinfo(c, out)
}

// holder keeps the fds agents put, across the agents' deaths.
type holder struct {
	mu    sync.Mutex
	files map[string]*os.File
}

func newHolder(t *testing.T) *holder {
	h := &holder{files: map[string]*os.File{}}
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, f := range h.files {
			f.Close()
		}
	})
	return h
}

// serve reads one agent's puts and drops until it dies.
func (h *holder) serve(conn *os.File) {
	defer conn.Close()
	buf, oob := make([]byte, 512), make([]byte, unix.CmsgSpace(4))
	for {
		n, noob, _, _, err := unix.Recvmsg(int(conn.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != nil || n == 0 {
			return
		}
		op, key, _ := strings.Cut(string(buf[:n]), " ")
		h.mu.Lock()
		if old := h.files[key]; old != nil {
			old.Close()
			delete(h.files, key)
		}
		if op == "put" {
			if msgs, err := unix.ParseSocketControlMessage(oob[:noob]); err == nil && len(msgs) == 1 {
				if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) == 1 {
					h.files[key] = os.NewFile(uintptr(fds[0]), key)
				}
			}
		}
		h.mu.Unlock()
	}
}

func (h *holder) keys() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var k []string
	for key := range h.files {
		k = append(k, key)
	}
	return k
}

// agentProc is one running agent process.
type agentProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when it exited, with err
	err  error
}

// startAgent runs an agent serving dir for e's containers with the fds h
// holds; extraEnv is added to its environment. It returns once the agent
// listens.
func startAgent(t *testing.T, e *env, dir string, h *holder, extraEnv ...string) *agentProc {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "holder"), os.NewFile(uintptr(fds[1]), "agent")
	defer theirs.Close()
	cmd := exec.Command(os.Args[0])
	cmd.ExtraFiles = []*os.File{theirs}
	var held []string
	h.mu.Lock()
	for key, f := range h.files {
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
		held = append(held, fmt.Sprintf("%s=%d", key, 2+len(cmd.ExtraFiles)))
	}
	h.mu.Unlock()
	cmd.Env = append(os.Environ(), agentDirEnv+"="+dir, agentRootEnv+"="+e.root,
		agentHeldEnv+"="+strings.Join(held, ","))
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go h.serve(mine)
	p := &agentProc{cmd: cmd, done: make(chan struct{})}
	line, _ := bufio.NewReader(out).ReadString('\n')
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	if line != "ready\n" {
		t.Fatalf("seccomp agent did not start: %q", line)
	}
	return p
}

func (p *agentProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
	}
}
