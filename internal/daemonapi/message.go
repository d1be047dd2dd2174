// Package daemonapi is the control protocol of `lkc daemon`: its messages,
// versions and error classes, the server loop the worker runs on
// control.sock, and the client the CLI uses (with the autostart of
// docs/daemon.md). It is a leaf: its one reason to change is the protocol.
//
// One JSON object per SOCK_SEQPACKET packet, at most MaxMessage bytes, so
// there is no framing and no partial read. A request is
// {"v":1,"op":"adopt","seq":7,"body":{...}}; its answer carries the same
// seq and either a body or an error with its class.
package daemonapi

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Version is the newest protocol version this lkc speaks; Versions are all
// it speaks (fields are only ever added within a version).
const Version = 1

// Versions lists the protocol versions this side speaks, oldest first.
var Versions = []int{1}

// MaxMessage is the largest packet either side sends or accepts.
const MaxMessage = 64 << 10

// SocketName is the control socket's name in the daemon's directory.
const SocketName = "control.sock"

// ErrTooLarge refuses a message above MaxMessage.
var ErrTooLarge = fmt.Errorf("message larger than %d bytes", MaxMessage)

// Request is one operation asked of the daemon.
type Request struct {
	V    int             `json:"v"`
	Op   string          `json:"op"`
	Seq  uint64          `json:"seq"`
	Body json.RawMessage `json:"body,omitempty"`
}

// Response answers the request with the same Seq: Body, or Error and its
// Class.
type Response struct {
	V     int             `json:"v"`
	Seq   uint64          `json:"seq"`
	Body  json.RawMessage `json:"body,omitempty"`
	Error string          `json:"error,omitempty"`
	Class string          `json:"class,omitempty"`
}

// encode marshals one message and refuses it above MaxMessage.
func encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxMessage {
		return nil, ErrTooLarge
	}
	return b, nil
}

// decode unmarshals one packet of n bytes read into b (n > len(b)
// means the packet was cut: it was too large).
func decode(b []byte, n int, v any) error {
	if n > MaxMessage {
		return ErrTooLarge
	}
	if err := json.Unmarshal(b[:n], v); err != nil {
		return fmt.Errorf("malformed message: %w", err)
	}
	return nil
}

// request encodes request seq of op with body in.
func request(op string, seq uint64, in any) ([]byte, error) {
	b, err := body(in)
	if err != nil {
		return nil, err
	}
	msg, err := encodeRequest(op, seq, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return msg, nil
}

// body marshals a request's or answer's body (nil stays empty).
func body(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	b, err := encodeBody(v)
	if err != nil {
		return nil, fmt.Errorf("encoding body: %w", err)
	}
	return b, nil
}

// Unbody decodes a request's body into v; an absent body leaves v as is.
func Unbody(b json.RawMessage, v any) error {
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return &Error{Class: ClassInvalid, Msg: "malformed body: " + err.Error()}
	}
	return nil
}

// common returns the highest version in both lists, or 0.
func common(offered []int) int {
	best := 0
	for _, o := range offered {
		for _, v := range Versions {
			if o == v && v > best {
				best = v
			}
		}
	}
	return best
}

var errNoHello = errors.New("the first request must be hello")
