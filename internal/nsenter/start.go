package nsenter

// #include "start.h"
import "C"

// StartFacts is the file in a container's state directory that lets the
// constructor do a plain `lkc start` without the Go runtime (start.c): one
// line, "<init pid> <init start time> <freezer file>\n", the freezer file
// empty without a freezer. Only `lkc create` writes it, and only for a
// container whose start has nothing for Go to do (no poststart hooks).
const StartFacts = C.LKC_START_FACTS

// StartFailedEnv carries the error of a fast start that failed after
// releasing init: the constructor re-executes the CLI with it, and
// container.Start returns it as the command's error.
const StartFailedEnv = C.LKC_START_FAILED
