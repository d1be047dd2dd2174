// Package rulesengine is the daemon's rules engine: it follows the
// kernel's process events (internal/procconn), describes each process
// that execs or changes its ids, finds its rule (internal/rules) and
// moves its whole thread group into the target's cgroup, then sweeps the
// children it forked before the move (cgrulesengd's race). Its one
// reason to change is how processes are classified and moved;
// docs/daemon.md ("Engine") has the design and docs/groups.md the rules.
package rulesengine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/groups"
	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/rules"
	"github.com/lkc-containers/lkc/internal/state"
)

// placement is where a process goes: hierarchy (as /proc/<pid>/cgroup
// names it, "" for v2) to the cgroup path within it.
type placement map[string]string

// Record is what the engine did with a process, for `lkc rules explain`.
type Record struct {
	Start  uint64 // the process's start time, against pid reuse
	Match  *rules.Match
	Action string
	To     placement // where Action went ("moved to", "already in"), if anywhere
	When   time.Time
}

// action is what the engine did, with where: the placement is written
// out only when asked, not at each of a storm's moves.
func (r *Record) action() string {
	if r.To == nil {
		return r.Action
	}
	return r.Action + " " + r.To.String()
}

// Engine classifies and moves processes. Classify and Scan run one at a
// time (the service orders them); mu guards what explain and reload share
// with them.
type Engine struct {
	host   cgroups.Host
	pidNS  string            // the daemon's pid namespace: a process in another is a container's
	mounts map[string]string // hierarchy -> its mount point
	self   []int             // the daemon's own processes, never moved
	logf   func(string, ...any)

	mu    sync.Mutex
	rules []*rules.Rule
	users rules.Users
	scope []string
	store *groups.Store
	need  needs    // the /proc files the rules read
	roots []string // rules.roots: where container= targets are looked up
	// served lists the roots of the containers the daemon serves (nil
	// in tests), searched after roots.
	served  func() []string
	records map[int]*Record
	stats   Stats

	// groupTo caches each group's placement (emptied at each load, and
	// for a group whose cgroup a move found missing).
	groupTo map[string]placement
	// Classify and Scan only: the cgroup.procs files they write (kept
	// open while moves come, closed a second after the last), the /proc
	// readers (cg for the cgroup files, whose set cur holds views of, rd
	// for the rest) and the sweep's queue.
	procs    procsFiles
	lastMove time.Duration // monotonic time of the last move
	rd       procReader
	cg       procReader
	cur      cgroupSet
	queue    []int
	warm     *warmer // nil until the service starts it, and without v1
	moveDie  string  // MoveDieEnv's file ("": none)
}

// Stats are the engine's counters.
type Stats struct {
	Rules    int
	Moved    int // processes moved by their own rule
	Swept    int // children moved after their parent (forked before its move)
	Failed   int
	Overruns int
	// Resubscribes counts read errors of the subscription other than an
	// overrun, each followed by a new subscription and a scan.
	Resubscribes int
	Scans        int
	latencies    []time.Duration // exec event -> moved, the last maxLatencies
	next         int
}

const maxLatencies = 1 << 16

// NewEngine is an engine over the host's cgroups that never moves the
// processes in self.
func NewEngine(host cgroups.Host, self []int, logf func(string, ...any)) (*Engine, error) {
	all, err := cgroups.New(host, "/")
	if err != nil {
		return nil, err
	}
	e := &Engine{host: host, mounts: map[string]string{}, self: self, logf: logf,
		records: map[int]*Record{}, users: rules.ParseUsers(nil, nil),
		groupTo: map[string]placement{}, procs: procsFiles{}}
	for h, dir := range all.Paths() {
		e.mounts[h] = dir
	}
	e.pidNS, _ = os.Readlink("/proc/self/ns/pid")
	e.moveDie = os.Getenv(MoveDieEnv)
	return e, nil
}

// MoveDieEnv, set to the path of a file in the daemon's environment,
// makes the worker SIGKILL itself after the first cgroup.procs write of
// a move that has more to write, if it can remove that file: a process
// left half in a group (v1), which the next worker's start scan must
// place whole. The integration test of that crash uses it, once.
const MoveDieEnv = "LKC_TEST_RULES_MOVE_DIE"

// keepWarm starts keeping moves after a pause fast (warmer) until ctx
// ends or stopWarm.
func (e *Engine) keepWarm(ctx context.Context) {
	e.warm = newWarmer(ctx, e.mounts, func() string {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.store == nil {
			return ""
		}
		return e.store.Parent
	}, e.logf)
}

// stopWarm ends the warming thread and removes its cgroup.
func (e *Engine) stopWarm() { e.warm.stop() }

// Load reads the rules files conf names (rules.files, in order, each
// pattern's matches in name order, then rules.cgrules) and the user
// tables. On an error the engine keeps what it had.
func (e *Engine) Load(conf *hostconf.Conf) error {
	var all []*rules.Rule
	files := []string{}
	for _, pat := range conf.RulesFiles {
		m, err := filepath.Glob(pat)
		if err != nil {
			return fmt.Errorf("rules.files %q: %w", pat, err)
		}
		files = append(files, m...)
	}
	if conf.RulesCgrules != "" {
		files = append(files, conf.RulesCgrules)
	}
	for _, f := range files {
		rs, err := parseFile(f)
		if err != nil {
			return err
		}
		all = append(all, rs...)
	}
	users := readUsers()
	store := groups.FromConf(conf)
	if e.logf != nil {
		for _, w := range append(rules.ExtraFields(all), MissingGroups(all, store)...) {
			e.logf("rules: warning: %s", w)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rules, e.users, e.scope = all, users, conf.RulesScope
	e.need = needsOf(all)
	e.roots = conf.RulesRoots
	e.store = store
	e.groupTo = map[string]placement{}
	e.store.Host = e.host
	e.stats.Rules = len(all)
	return nil
}

func parseFile(name string) ([]*rules.Rule, error) {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading rules: %w", err)
	}
	defer f.Close()
	return rules.Parse(f, name)
}

func readUsers() *rules.Table {
	passwd, _ := os.Open("/etc/passwd")
	group, _ := os.Open("/etc/group")
	defer passwd.Close()
	defer group.Close()
	return rules.ParseUsers(passwd, group)
}

// HasRules reports whether any rule is loaded (no rules: no events needed).
func (e *Engine) HasRules() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.rules) > 0
}

// Scan classifies every process (at start, after a reload and after
// lost events), which also drops the records of processes that are gone.
func (e *Engine) Scan() {
	ents, _ := os.ReadDir("/proc")
	live := map[int]bool{}
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		live[pid] = true
		e.classify(pid, 0, true)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for pid := range e.records {
		if !live[pid] {
			delete(e.records, pid)
		}
	}
	e.stats.Scans++
}

// Classify finds the rule of process pid and moves it, then its
// children; since is the monotonic time of the exec event (0 for a
// scan), for the latency counter.
func (e *Engine) Classify(pid int, since time.Duration) {
	e.classify(pid, since, false)
}

// classify is Classify; a scan also sweeps the children of the processes
// in resource groups (followGroup).
func (e *Engine) classify(pid int, since time.Duration, scan bool) {
	if slices.Contains(e.self, pid) {
		return
	}
	cur, err := cgroupsOf(&e.cg, pid, e.cur)
	if err != nil {
		return
	}
	e.cur = cur
	if !e.anyInScope(cur) {
		if scan && !e.inContainer(pid) {
			e.followGroup(pid, cur)
		}
		return
	}
	if e.inContainer(pid) {
		return
	}
	if e.finishGroup(pid, cur) {
		if cur, err = cgroupsOf(&e.cg, pid, e.cur); err != nil {
			return
		}
		e.cur = cur
	}
	e.mu.Lock()
	need := e.need
	e.mu.Unlock()
	needCgroups := need.cgroups
	need.cgroups = false // cur has them
	p, start, err := describe(&e.rd, pid, need)
	if err != nil || p.Exe == "" && kernelThread(pid) {
		return
	}
	if needCgroups {
		p.Cgroups = cur.toMap()
	}
	e.mu.Lock()
	m := rules.Find(e.rules, p, e.users)
	store := e.store
	e.mu.Unlock()
	rec := &Record{Start: start, Match: m, When: time.Now()}
	defer e.record(pid, rec)
	switch {
	case m == nil:
		rec.Action = "no rule matches"
		return
	case m.Rule.Ignore:
		rec.Action = "left where it is (ignore)"
		return
	}
	to, err := e.placementOf(m, store)
	if err != nil {
		rec.Action = "not moved: " + err.Error()
		e.count(func(s *Stats) { s.Failed++ })
		return
	}
	if why := e.refuse(cur, to, store); why != "" {
		rec.Action = "not moved: " + why
		return
	}
	moved, err := e.move(pid, cur, to)
	if errors.Is(err, os.ErrNotExist) { // a group's cgroup removed meanwhile: make it again
		e.mu.Lock()
		e.groupTo = map[string]placement{}
		e.mu.Unlock()
		if to, err = e.placementOf(m, store); err == nil {
			moved, err = e.move(pid, cur, to)
		}
	}
	switch {
	case err != nil:
		rec.Action = "not moved: " + err.Error()
		e.count(func(s *Stats) { s.Failed++ })
		return
	case moved:
		rec.Action, rec.To = "moved to", to
		e.count(func(s *Stats) { s.Moved++ })
		if since > 0 {
			e.latency(monotonic() - since)
		}
	default:
		rec.Action, rec.To = "already in", to
	}
	e.sweep(pid, to)
}

// followGroup, at a scan, sweeps into a resource group the children of a
// process in it that are still in scope: a worker killed between a move
// and its sweep (or `lkc group move` of a parent alone) left them behind,
// and no event of theirs would place them (their own rule may match
// nothing).
func (e *Engine) followGroup(pid int, cur cgroupSet) {
	e.mu.Lock()
	store := e.store
	e.mu.Unlock()
	if store == nil {
		return
	}
	parent := store.Parent
	to := placement{}
	for _, c := range cur {
		if _, ok := e.mounts[c.h]; ok && under(c.p, parent) && c.p != parent {
			to[strings.Clone(c.h)] = strings.Clone(c.p)
		}
	}
	if len(to) > 0 {
		e.sweep(pid, to)
	}
}

// finishGroup completes the placement of a process half in a resource
// group: in the group's cgroup in some hierarchies and, in others of the
// group's, in rules.scope outside any group. A worker killed between two
// hierarchies' writes of a move leaves it so (v1); the next worker's
// start scan would place it whole by the same rule, but with the rules
// changed meanwhile the group's stickiness (refuse) would keep it half
// placed for good. So whatever the rules say now, a process placed in a
// group goes there whole. It reports whether it moved the process.
func (e *Engine) finishGroup(pid int, cur cgroupSet) bool {
	e.mu.Lock()
	store := e.store
	e.mu.Unlock()
	if store == nil {
		return false
	}
	prefix := strings.TrimSuffix(store.Parent, "/") + "/"
	name := ""
	for _, c := range cur {
		if _, ok := e.mounts[c.h]; ok && strings.HasPrefix(c.p, prefix) {
			name = strings.Clone(c.p[len(prefix):])
			break
		}
	}
	if name == "" || groups.CheckName(name) != nil {
		return false
	}
	e.mu.Lock()
	_, cached := e.groupTo[name]
	e.mu.Unlock()
	if !cached {
		// A cgroup made by hand beneath a group's is no group: found so
		// without the groups' lock, which groupTargets takes.
		if _, err := store.Get(name); err != nil {
			return false
		}
	}
	to, err := e.groupTargets(name, "", store)
	if err != nil {
		return false
	}
	rest := placement{}
	e.mu.Lock()
	for h, dest := range to {
		if p, ok := cur.get(h); ok && p != dest && !under(p, store.Parent) && e.inScope(p) {
			rest[h] = dest
		}
	}
	e.mu.Unlock()
	if len(rest) == 0 {
		return false
	}
	moved, err := e.move(pid, cur, rest)
	if err != nil {
		e.logf("rules: finishing the placement of %d in group %s: %v", pid, name, err)
	}
	return moved
}

// inContainer reports a process in another pid namespace than the
// daemon's: a container's, which rules never take out of its cgroup.
func (e *Engine) inContainer(pid int) bool {
	ns, err := e.rd.readlink(pid, "ns/pid")
	return err != nil || string(ns) != e.pidNS
}

func (e *Engine) record(pid int, r *Record) {
	e.mu.Lock()
	e.records[pid] = r
	e.mu.Unlock()
}

func (e *Engine) count(f func(*Stats)) {
	e.mu.Lock()
	f(&e.stats)
	e.mu.Unlock()
}

// kernelThread reports a kernel thread, or a process whose stat cannot
// be read: either way nothing to move.
func kernelThread(pid int) bool {
	k, err := state.KernelThread(pid)
	return err != nil || k
}

// anyInScope is a cheap first test: some hierarchy of the process lies
// under rules.scope (the full test is per target hierarchy, in refuse).
func (e *Engine) anyInScope(cur cgroupSet) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range cur {
		if _, ok := e.mounts[c.h]; ok && e.inScope(c.p) {
			return true
		}
	}
	return false
}

func (e *Engine) inScope(p string) bool {
	for _, s := range e.scope {
		if under(p, s) {
			return true
		}
	}
	return false
}

// refuse says why a process in cgroups cur must stay: in a hierarchy it
// would move in, it sits outside rules.scope (never move a process out
// of a cgroup the engine was not given), or it is in a resource group
// already (placed by `lkc group exec/move` or by a rule: sticky).
func (e *Engine) refuse(cur cgroupSet, to placement, store *groups.Store) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	for h, dest := range to {
		p, ok := cur.get(h)
		switch {
		case !ok || p == dest:
		case under(p, store.Parent):
			return "in a resource group already (" + p + ")"
		case !e.inScope(p):
			return "its cgroup " + p + " is outside rules.scope"
		}
	}
	return ""
}

// move writes the process's tgid to cgroup.procs of each hierarchy where
// it is elsewhere; it reports whether it wrote any. It moves all or
// nothing: when a hierarchy refuses (v1: a cpuset without CPUs), the
// process goes back where it was in the hierarchies already written, so
// it is never left half in a group (where, sticky, no later rule would
// place it).
func (e *Engine) move(pid int, cur cgroupSet, to placement) (bool, error) {
	done := make([]string, 0, 16)
	for h, dest := range to {
		if p, _ := cur.get(h); p == dest {
			continue
		}
		err := e.procs.write(e.mounts[h], dest, pid)
		if errors.Is(err, unix.ESRCH) {
			return len(done) > 0, nil
		}
		if err != nil {
			return false, fmt.Errorf("moving %d: %w%s", pid, err, e.moveBack(pid, cur, done))
		}
		done = append(done, h)
		if e.moveDie != "" && len(done) < len(to) && os.Remove(e.moveDie) == nil {
			unix.Kill(os.Getpid(), unix.SIGKILL)
		}
	}
	if len(done) > 0 {
		e.warm.moved()
		e.lastMove = monotonic()
	}
	return len(done) > 0, nil
}

// idleAfter is how long after its last move the engine keeps the
// cgroup.procs files of its targets open.
const idleAfter = time.Second

// releaseIdle closes the cgroup.procs files kept open once no move came
// for idleAfter: a storm's moves reuse them, but a target's cgroup may
// be gone (a group deleted, a container ended), and its file would stay
// open for as long as the engine runs. Events of processes that move
// nowhere (the host's other execs) do not keep them.
func (e *Engine) releaseIdle() {
	if len(e.procs) > 0 && monotonic()-e.lastMove >= idleAfter {
		e.procs.closeAll()
	}
}

// moveBack writes pid back into its cgroups cur in hierarchies done, and
// says how that went, as the end of move's error.
func (e *Engine) moveBack(pid int, cur cgroupSet, done []string) string {
	for _, h := range done {
		p, ok := cur.get(h)
		if !ok {
			continue
		}
		// cur views a reused buffer; the open files are keyed by path.
		if err := e.procs.write(e.mounts[h], strings.Clone(p), pid); err != nil && !errors.Is(err, unix.ESRCH) {
			return "; and moving it back: " + err.Error()
		}
	}
	return " (moved back)"
}

// sweep moves the children pid forked before its move, and theirs,
// each moved before its own children are listed. No fork escapes it, so
// the engine needs no FORK events: a fork holds cgroup_threadgroup_rwsem
// for reading from taking its parent's cgroups (cgroup_can_fork) until
// it has linked the child on the parent's children list and attached it
// (cgroup_post_fork), and a cgroup.procs write holds it for writing; so
// once a move returned, a child either was listed (forked before) or
// inherits the target (forked after).
func (e *Engine) sweep(pid int, to placement) {
	queue := children(&e.rd, pid, e.queue[:0])
	for i := 0; i < len(queue); i++ {
		if e.adopt(queue[i], to) {
			queue = children(&e.rd, queue[i], queue)
		}
	}
	e.queue = queue[:0]
}

// adopt moves child c of a moved process to the parent's placement,
// unless it is there already or outside scope; it reports a move.
func (e *Engine) adopt(c int, to placement) bool {
	cur, err := cgroupsOf(&e.cg, c, e.cur)
	if err != nil {
		return false
	}
	e.cur = cur
	e.mu.Lock()
	store := e.store
	e.mu.Unlock()
	if e.refuse(cur, to, store) != "" {
		return false
	}
	moved, err := e.move(c, cur, to)
	if err != nil || !moved {
		return false
	}
	e.count(func(s *Stats) { s.Swept++ })
	return true
}

// placementOf resolves a match's targets into cgroup paths, making a
// templated group (group=java/%u) on the fly. A placement is not
// changed once made (a rule of one group target gets the cached one)
// until its group is removed (forgetGroup).
func (e *Engine) placementOf(m *rules.Match, store *groups.Store) (placement, error) {
	if len(m.Targets) == 1 && m.Targets[0].Kind == "group" {
		return e.groupTargets(m.Targets[0].Name, template(m.Rule.Targets[0].Name), store)
	}
	to := placement{}
	for i, t := range m.Targets {
		switch t.Kind {
		case "group":
			if err := e.groupPlacement(to, t.Name, template(m.Rule.Targets[i].Name), store); err != nil {
				return nil, err
			}
		case "cgroup":
			if err := e.cgroupPlacement(to, t); err != nil {
				return nil, err
			}
		case "container":
			if err := e.containerPlacement(to, t.Name); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%s targets are not supported by the rules engine", t.Kind)
		}
	}
	return to, nil
}

// template is a group target as a rule writes it when it holds
// templates (%u), for the group the engine makes from it; "" otherwise.
func template(target string) string {
	if strings.Contains(target, "%") {
		return target
	}
	return ""
}

// forgetGroup drops what the engine keeps of group name (its placement,
// the cgroup files kept open for moves) once the group is removed, so
// the next match makes it again.
func (e *Engine) forgetGroup(name string) {
	e.mu.Lock()
	delete(e.groupTo, name)
	e.mu.Unlock()
	e.procs.closeAll()
}

func (e *Engine) groupPlacement(to placement, name, tmpl string, store *groups.Store) error {
	cached, err := e.groupTargets(name, tmpl, store)
	if err != nil {
		return err
	}
	for h, p := range cached {
		to[h] = p
	}
	return nil
}

// groupTargets is group name's placement, cached.
func (e *Engine) groupTargets(name, tmpl string, store *groups.Store) (placement, error) {
	e.mu.Lock()
	cached, ok := e.groupTo[name]
	e.mu.Unlock()
	if ok {
		return cached, nil
	}
	cached, err := e.resolveGroup(name, tmpl, store)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.groupTo[name] = cached
	e.mu.Unlock()
	return cached, nil
}

// resolveGroup reads a group, makes its cgroup where missing and returns
// its placement. Both under the groups' lock (Store.Ready): a delete
// under way removes the cgroup before the definition, and a cgroup made
// in between would outlive the group, holding the process.
func (e *Engine) resolveGroup(name, tmpl string, store *groups.Store) (placement, error) {
	m, err := store.Ready(name)
	if errors.Is(err, groups.ErrNotExist) && tmpl != "" {
		if err = store.Create(&groups.Group{Name: name, Template: tmpl}); err == nil || errors.Is(err, groups.ErrExist) {
			m, err = store.Ready(name)
		}
	}
	if err != nil {
		return nil, err
	}
	to := placement{}
	for h, dir := range m.Paths() {
		to[h] = strings.TrimPrefix(dir, strings.TrimSuffix(e.mounts[h], "/"))
	}
	return to, nil
}

// cgroupPlacement is a cgrules destination: the path from the root of
// each hierarchy the rule names (every one for "*" and on v2), made when
// missing.
//
// The check for . and .. comes after the templates: %p falls back to the
// comm when the executable cannot be read (a zombie's), and any process
// may name itself "../../../../x" (PR_SET_NAME): the destination would
// then leave the hierarchy, and the engine, root, make a directory
// anywhere.
func (e *Engine) cgroupPlacement(to placement, t rules.Target) error {
	dest := "/" + strings.Trim(t.Name, "/")
	for _, c := range strings.Split(dest[1:], "/") {
		if c == "." || c == ".." {
			return fmt.Errorf("destination %q: . and .. are not allowed (after templates)", t.Name)
		}
	}
	dirs := map[string]string{}
	for h, mnt := range e.mounts {
		if h != "" && !slices.Contains(t.Controllers, "*") && !anyIn(strings.Split(h, ","), t.Controllers) {
			continue
		}
		dirs[h] = filepath.Join(mnt, dest)
		to[h] = dest
	}
	if len(dirs) == 0 {
		return fmt.Errorf("no hierarchy has controllers %v", t.Controllers)
	}
	// Create fills a new cpuset's cpus and mems, without which it takes
	// no process.
	if err := cgroups.FromPaths(dirs, nil).Create(); err != nil {
		return fmt.Errorf("cgroup %s: %w", dest, err)
	}
	return nil
}

func anyIn(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

func (p placement) String() string {
	seen := map[string]bool{}
	var out []string
	for _, d := range p {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// monotonic is CLOCK_MONOTONIC, the clock of the kernel's event
// timestamps, read through the vDSO (unix.ClockGettime is a system call).
func monotonic() time.Duration { return time.Duration(nanotime()) }

func (e *Engine) latency(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := &e.stats
	if len(s.latencies) < maxLatencies {
		s.latencies = append(s.latencies, d)
		return
	}
	s.latencies[s.next] = d
	s.next = (s.next + 1) % maxLatencies
}
