package seccompagent

import (
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
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

// readMessage reads the one message a runtime sends on conn: the state
// as data and the fds it names as SCM_RIGHTS. It returns the notify fd
// (named "seccompFd") and closes every other fd received.
func readMessage(conn int) (Message, int, error) {
	buf, oob := make([]byte, 1<<16), make([]byte, unix.CmsgSpace(4*maxFds))
	n, noob, _, _, err := unix.Recvmsg(conn, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return Message{}, -1, fmt.Errorf("reading the runtime's message: %w", err)
	}
	if n == 0 && noob == 0 {
		return Message{}, -1, errHungUp
	}
	fds, err := rights(oob[:noob])
	if err != nil {
		return Message{}, -1, err
	}
	m, fd, err := parseMessage(buf[:n], fds)
	for _, f := range fds {
		if f != fd {
			unix.Close(f)
		}
	}
	return m, fd, err
}

func rights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("runtime's message: %w", err)
	}
	var fds []int
	for i := range msgs {
		if f, err := unix.ParseUnixRights(&msgs[i]); err == nil {
			fds = append(fds, f...)
		}
	}
	return fds, nil
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
