package nsenter

// #include <stdlib.h>
// #include "plan.h"
import "C"

import (
	"errors"
	"unsafe"
)

// Prepared is a plan whose steps that can fail before the process is
// reported ready are done in this process, ready for Exec.
type Prepared struct {
	plan  *C.struct_lkc_plan
	state []byte
}

// Prepare carries out in this process (Go's init) the first steps of p:
// the working directory, closing every fd but the preserved ones, the PATH
// lookup, HOME, the scheduler and the I/O priority. It is the
// constructor's code (plan.c), so that each step of a process's start
// exists once.
//
// Preconditions: when p's process has a scheduler or an I/O priority, the
// goroutine is locked to the thread that will Exec (both are per thread).
func Prepare(p Plan) (*Prepared, error) {
	var msg [C.LKC_ERRLEN]C.char
	buf := p.Encode()
	// The C plan keeps pointers into both buffers until the process execs:
	// they are never freed.
	cbuf := C.CBytes(buf)
	plan := C.lkc_plan_parse((*C.char)(cbuf), C.size_t(len(buf)), &msg[0])
	if plan == nil {
		return nil, errors.New(C.GoString(&msg[0]))
	}
	var prog unsafe.Pointer
	if len(p.Seccomp) > 0 {
		prog = C.CBytes(p.Seccomp)
	}
	if C.lkc_plan_prepare(plan, prog, C.size_t(len(p.Seccomp)), &msg[0]) < 0 {
		return nil, errors.New(C.GoString(&msg[0]))
	}
	return &Prepared{plan: plan, state: p.NotifyState}, nil
}

// Exec carries out the rest of the plan and execs: umask, rlimits, the
// seccomp filter (handing its notify fd to the listener), user, groups,
// capabilities and no_new_privs. It returns only on failure.
//
// Preconditions: the goroutine is locked to its thread (all but umask and
// rlimits are per thread).
func (p *Prepared) Exec() error {
	var msg [C.LKC_ERRLEN]C.char
	var state unsafe.Pointer
	if len(p.state) > 0 {
		state = C.CBytes(p.state)
	}
	C.lkc_plan_exec(p.plan, state, C.size_t(len(p.state)), &msg[0])
	return errors.New(C.GoString(&msg[0]))
}
