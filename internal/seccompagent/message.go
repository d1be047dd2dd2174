package seccompagent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/scm"
)

// Message is what the runtime sends with a notify fd (the runtime spec's
// container process state), as far as the agent needs it.
type Message struct {
	// Pid is the process that loaded the filter, InitPid the container's
	// init, as the host sees them.
	Pid, InitPid int
	// Metadata is linux.seccomp.listenerMetadata, uninterpreted.
	Metadata string
	// ID and Bundle name the container; Status is "creating" for its init.
	ID, Bundle, Status string
	// Annotations are the container's config annotations.
	Annotations map[string]string
}

// wireState is the runtime spec's containerProcessState.
type wireState struct {
	Fds      []string `json:"fds"`
	Pid      int      `json:"pid"`
	Metadata string   `json:"metadata"`
	State    struct {
		ID          string            `json:"id"`
		Pid         int               `json:"pid"`
		Status      string            `json:"status"`
		Bundle      string            `json:"bundle"`
		Annotations map[string]string `json:"annotations"`
	} `json:"state"`
}

// errHungUp: the runtime closed the connection without a message, as lkc
// does when a create fails before its container starts.
var errHungUp = errors.New("runtime hung up without a message")

// maxFds bounds the fds one message may carry; the runtime spec's message
// names each, lkc's runtime sends one.
const maxFds = 8

// maxMessage bounds a runtime's message. Its state carries the
// container's annotations, which may be large (Kubernetes allows 256 KiB
// of them), so the message arrives in several reads of the stream.
const maxMessage = 4 << 20

// pending is a runtime's message as far as it has arrived on a stream
// socket, which delivers it in pieces: the fds come with the first.
type pending struct {
	data []byte
	fds  []int
}

// readMore reads what conn holds of its message without waiting; done
// once the message is whole (its JSON complete, or the runtime closed
// the connection).
func (p *pending) readMore(conn int) (done bool, err error) {
	buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4*maxFds))
	for {
		n, noob, _, _, err := unix.Recvmsg(conn, buf, oob, unix.MSG_CMSG_CLOEXEC)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return false, nil
		case err != nil:
			return false, fmt.Errorf("reading the runtime's message: %w", err)
		}
		fds, err := scm.Rights(oob[:noob])
		p.fds = append(p.fds, fds...)
		if err != nil {
			return false, fmt.Errorf("the runtime's message: %w", err)
		}
		if n == 0 && noob == 0 {
			return true, nil
		}
		p.data = append(p.data, buf[:n]...)
		if len(p.data) > maxMessage {
			return false, fmt.Errorf("runtime's message: over %d bytes", maxMessage)
		}
		if end := bytes.TrimRight(p.data, " \t\r\n"); len(end) > 0 && end[len(end)-1] == '}' && json.Valid(p.data) {
			return true, nil
		}
	}
}

// message decodes the whole message and returns the notify fd (named
// "seccompFd"), closing every other fd received.
func (p *pending) message() (Message, int, error) {
	if len(p.data) == 0 && len(p.fds) == 0 {
		return Message{}, -1, errHungUp
	}
	m, fd, err := parseMessage(p.data, p.fds)
	for _, f := range p.fds {
		if f != fd {
			unix.Close(f)
		}
	}
	p.fds = nil
	return m, fd, err
}

// close closes the fds of a message never completed.
func (p *pending) close() {
	for _, f := range p.fds {
		unix.Close(f)
	}
	p.fds = nil
}

// parseMessage decodes data and picks the notify fd out of fds by its
// name in the state's "fds" list.
func parseMessage(data []byte, fds []int) (Message, int, error) {
	var w wireState
	if err := json.Unmarshal(data, &w); err != nil {
		return Message{}, -1, fmt.Errorf("runtime's message: %w", err)
	}
	if len(w.Fds) != len(fds) {
		return Message{}, -1, fmt.Errorf("runtime's message names %d fds and carries %d", len(w.Fds), len(fds))
	}
	m := Message{Pid: w.Pid, InitPid: w.State.Pid, Metadata: w.Metadata, ID: w.State.ID, Bundle: w.State.Bundle,
		Status: w.State.Status, Annotations: w.State.Annotations}
	for i, name := range w.Fds {
		if name == "seccompFd" {
			return m, fds[i], nil
		}
	}
	return m, -1, errors.New("runtime's message carries no seccompFd")
}
