package container

import (
	"errors"
	"io"
	"os"
)

// CheckpointOpts are the options of `lkc checkpoint` (runc's flags).
type CheckpointOpts struct {
	Root, ID string
	CRIU     string // criu binary; "" finds the default (see internal/checkpoint)

	ImagePath  string // where the images go (created if missing)
	WorkPath   string // logs and CRIU's work files ("" = ImagePath)
	ParentPath string // previous pre-dump, relative to ImagePath or absolute

	LeaveRunning    bool
	TCPEstablished  bool
	TCPSkipInFlight bool
	ExtUnixSk       bool
	ShellJob        bool
	FileLocks       bool
	PreDump         bool
	AutoDedup       bool
	LazyPages       bool
	LinkRemap       bool
	EmptyNS         []string // namespace types CRIU must not dump ("network", ...)

	ManageCgroupsMode string // soft|full|strict|ignore ("" = soft)
	PageServer        string // "host:port": send pages there (or, with LazyPages, serve them there)

	// StatusFD, when not nil, gets one '\0' byte when a lazy-pages dump is
	// ready for the restore to begin (runc's --status-fd).
	StatusFD *os.File
	// Progress, when not nil, gets human progress lines (bytes written);
	// nil is quiet.
	Progress io.Writer
}

// RestoreOpts are the options of `lkc restore` (runc's flags).
type RestoreOpts struct {
	Root, ID, Bundle string
	CRIU             string

	ImagePath, WorkPath, ParentPath string

	ConsoleSocket string
	PidFile       string
	Detach        bool
	NoSubreaper   bool
	NoPivot       bool

	TCPEstablished bool
	ExtUnixSk      bool
	ShellJob       bool
	FileLocks      bool
	LazyPages      bool
	EmptyNS        []string

	ManageCgroupsMode string
	// PageServer is the "host:port" of the source's page server; with
	// LazyPages, lkc starts CRIU's lazy-pages daemon against it itself.
	PageServer string
	StatusFD   *os.File

	// Warn gets failures that must not fail the operation; nil drops them.
	Warn func(error)
}

var errNoCheckpoint = errors.New("checkpoint/restore is being built: not available in this build yet")

// Checkpoint dumps container ID to o.ImagePath with CRIU. A checkpoint that
// fails leaves the container running and unchanged.
func Checkpoint(o CheckpointOpts) error { return errNoCheckpoint }

// Restore brings a checkpoint back as container ID; like Run, without
// Detach it waits and returns the exit code. A restore that fails leaves
// nothing behind.
func Restore(o RestoreOpts) (int, error) { return 0, errNoCheckpoint }
