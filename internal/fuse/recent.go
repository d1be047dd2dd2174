package fuse

import (
	"sync"
	"time"
)

// recentReuse is how old a GETATTR's rendering may be for the same
// process's OPEN of the same file to take it instead of rendering again.
// With default_permissions and attributes never cached, the kernel asks
// GETATTR (for the permission check) right before every OPEN, so without
// this every open+read+close rendered its file twice.
const recentReuse = 20 * time.Millisecond

// recentMax bounds the renderings kept; past it, expired ones are dropped.
const recentMax = 1024

type recentRender struct {
	pid     uint32
	at      time.Time
	content []byte
}

// recent keeps the last GETATTR's rendering of each regular file.
type recent struct {
	mu    sync.Mutex
	nodes map[uint64]recentRender
}

func newRecent() *recent { return &recent{nodes: map[uint64]recentRender{}} }

// put records node's rendering for process pid.
func (r *recent) put(node uint64, pid uint32, c []byte) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.nodes) >= recentMax {
		for n, e := range r.nodes {
			if now.Sub(e.at) > recentReuse {
				delete(r.nodes, n)
			}
		}
	}
	r.nodes[node] = recentRender{pid: pid, at: now, content: c}
}

// take returns and forgets node's rendering if process pid asked for it
// within recentReuse; another process's, or an older one, is never used.
func (r *recent) take(node uint64, pid uint32) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.nodes[node]
	if !ok || e.pid != pid || time.Since(e.at) > recentReuse {
		return nil, false
	}
	delete(r.nodes, node)
	return e.content, true
}
