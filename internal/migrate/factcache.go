package migrate

import (
	"sync"
	"time"
)

// factsTTL is how long a host's facts are reused. Reading them execs CRIU
// twice (its version, its features: ~8 ms), which every migration's offer
// and every probe paid on both sides: an evacuation of ten containers read
// them forty times within a few seconds. A CRIU or kernel change shows
// after at most this long.
const factsTTL = 5 * time.Second

// FactsCache hands out a host's facts (HostFacts), read again once they
// are older than factsTTL. The zero value is ready; it is safe for
// concurrent use. The facts it returns are shared: read them only.
type FactsCache struct {
	mu   sync.Mutex
	at   time.Time
	criu string // what f was read for
	f    *Facts
	read func(criu string) (*Facts, error) // nil is HostFacts of the live host
	now  func() time.Time                  // nil is time.Now
}

// Get returns this host's facts for CRIU at criu ("" finds the default),
// read at most factsTTL ago for the same criu.
func (c *FactsCache) Get(criu string) (*Facts, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	if c.f != nil && c.criu == criu && now().Sub(c.at) < factsTTL {
		return c.f, nil
	}
	read := func(criu string) (*Facts, error) { return HostFacts(criu, "/proc", "/sys/fs/cgroup") }
	if c.read != nil {
		read = c.read
	}
	f, err := read(criu)
	if err != nil {
		return nil, err
	}
	c.f, c.criu, c.at = f, criu, now()
	return f, nil
}
