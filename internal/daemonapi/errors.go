package daemonapi

import "errors"

// Error classes: an answer's error carries one, so the CLI can tell a
// missing container from a busy daemon with errors.Is.
const (
	ClassNotExist     = "not-exist"
	ClassExist        = "exist"
	ClassWrongState   = "wrong-state"
	ClassNotSupported = "not-supported"
	ClassBusy         = "busy"
	ClassInvalid      = "invalid"    // a malformed or oversized request
	ClassVersion      = "version"    // no protocol version in common
	ClassPermission   = "permission" // a peer other than root
)

// The sentinel error of each class.
var (
	ErrNotExist     = errors.New("does not exist")
	ErrExist        = errors.New("already exists")
	ErrWrongState   = errors.New("wrong state for this operation")
	ErrNotSupported = errors.New("not supported by the running daemon")
	ErrBusy         = errors.New("busy")
	ErrInvalid      = errors.New("invalid request")
	ErrVersion      = errors.New("no protocol version in common")
	ErrPermission   = errors.New("permission denied")
)

var classes = map[string]error{
	ClassNotExist: ErrNotExist, ClassExist: ErrExist, ClassWrongState: ErrWrongState,
	ClassNotSupported: ErrNotSupported, ClassBusy: ErrBusy, ClassInvalid: ErrInvalid,
	ClassVersion: ErrVersion, ClassPermission: ErrPermission,
}

// Error is an error answered by the daemon (or made for it by a handler).
type Error struct {
	Class string
	Msg   string
}

func (e *Error) Error() string { return e.Msg }

// Is matches the sentinel of e's class.
func (e *Error) Is(target error) bool {
	s, ok := classes[e.Class]
	return ok && s == target
}

// Errorf makes an error of a class; handlers return it.
func Errorf(class, msg string) error { return &Error{Class: class, Msg: msg} }

// classOf finds the class of a handler's error: its own, else that of the
// sentinel it wraps, else none.
func classOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	for c, s := range classes {
		if errors.Is(err, s) {
			return c
		}
	}
	return ""
}
