package daemonapi

import "github.com/lkc-containers/lkc/internal/hostconf"

// The operations of protocol version 1.
const (
	OpHello   = "hello"
	OpStatus  = "status"
	OpAdopt   = "adopt"
	OpRelease = "release"
	OpReload  = "reload"
	OpUpgrade = "upgrade"
	OpStop    = "stop"
	OpExplain = "explain"
	// OpReattach (body Container) is answered once the daemon serves a
	// container it adopted before again: its /proc view's files are the
	// running session's (repaired after the daemon was stopped or both of
	// its processes died) and its seccomp agent accepts. lkc exec sends it
	// before it hands the agent a listener; not-exist: not served.
	OpReattach = "reattach"
)

// Hello is the first request of a connection: the versions the client
// speaks.
type Hello struct {
	Versions []int `json:"versions"`
}

// HelloReply is the version both speak and the daemon's build.
type HelloReply struct {
	Version int    `json:"version"`
	Build   string `json:"build"`
}

// Container names a container: its lkc root and id.
type Container struct {
	Root string `json:"root"`
	ID   string `json:"id"`
}

// Release asks the daemon to stop serving a container: the incarnation of
// generation Gen (the adopt's answer), or whichever it serves when Gen is
// 0. A release that comes late, after the same id was adopted again, so
// leaves the new container served.
type Release struct {
	Container
	Gen uint64 `json:"gen,omitempty"`
}

// Adopt asks the daemon to serve a container with features.
type Adopt struct {
	Container
	Features hostconf.Features `json:"features"`
}

// AdoptReply is what the services give an adopted container; each service
// fills its part and sets, in Features, the features it took on.
type AdoptReply struct {
	Slot    int      `json:"slot"`
	Gen     uint64   `json:"gen"`
	ProcDir string   `json:"procDir,omitempty"`
	Files   []string `json:"files,omitempty"`
	// Flat names each of Files in ProcDir itself (the same file), so
	// that one listing of ProcDir finds them all; absent from a daemon
	// before it.
	Flat     []string          `json:"flat,omitempty"`
	Seccomp  *SeccompReply     `json:"seccomp,omitempty"`
	Features hostconf.Features `json:"features"`
}

// SeccompReply is the listener a container's sysinfo filter reports to.
type SeccompReply struct {
	Path     string `json:"path"`
	Metadata string `json:"metadata"`
}

// Status is the daemon's state for `lkc daemon status`.
type Status struct {
	Build      string   `json:"build"`
	Version    int      `json:"version"`
	HolderPid  int      `json:"holderPid"`
	WorkerPid  int      `json:"workerPid"`
	Services   []string `json:"services"`
	Held       []string `json:"held"` // keys of the fds the holder keeps
	Containers []Served `json:"containers"`
	Rules      *Rules   `json:"rules,omitempty"` // the rules engine's counters
	// Next is the slot the next page of Containers starts at (see
	// StatusPage); 0 on the last page.
	Next int `json:"next,omitempty"`
}

// StatusPage is the body of a status request: the served containers from
// slot From on. One answer holds at most MaxMessage bytes (about 500
// containers), so a daemon serving more answers in pages.
type StatusPage struct {
	From int `json:"from,omitempty"`
}

// Rules are the rules engine's counters in a status.
type Rules struct {
	Rules    int `json:"rules"`    // rules loaded
	Moved    int `json:"moved"`    // processes moved by their rule
	Swept    int `json:"swept"`    // children moved after their parent (forked before its move)
	Failed   int `json:"failed"`   // moves that failed
	Overruns int `json:"overruns"` // lost events (each followed by a rescan)
	// Resubscribes are read errors of the event subscription other than
	// an overrun, each followed by a new subscription and a rescan.
	Resubscribes int `json:"resubscribes"`
	Scans        int `json:"scans"`
	// Latency from the exec event to the process in its cgroup, over the
	// last moves after an exec (microseconds).
	Samples      int   `json:"samples"`
	LatencyP50us int64 `json:"latencyP50us"`
	LatencyP99us int64 `json:"latencyP99us"`
	LatencyMaxus int64 `json:"latencyMaxus"`
}

// Explain asks which rule placed a process.
type Explain struct {
	Pid int `json:"pid"`
}

// ExplainReply is the rule that matched a process (none: Rule is empty),
// why each of its criteria held, and what the engine did.
type ExplainReply struct {
	Pid     int      `json:"pid"`
	Rule    string   `json:"rule,omitempty"` // file:line: text
	Why     []string `json:"why,omitempty"`
	Targets []string `json:"targets,omitempty"`
	Action  string   `json:"action"`
	When    string   `json:"when,omitempty"` // RFC 3339, when the engine acted
}

// Served is one container the daemon serves.
type Served struct {
	Container
	Slot     int               `json:"slot"`
	Gen      uint64            `json:"gen"`
	Features hostconf.Features `json:"features"`
}

// Upgrade asks the holder to re-execute exe (an absolute path).
type Upgrade struct {
	Exe string `json:"exe"`
}

// UpgradeReply names the worker that now serves, from the new binary.
type UpgradeReply struct {
	WorkerPid int `json:"workerPid"`
}

// StopReply names the processes that are exiting.
type StopReply struct {
	HolderPid int `json:"holderPid"`
	WorkerPid int `json:"workerPid"`
}
