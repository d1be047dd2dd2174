package migrate

import (
	"errors"
	"fmt"
	"time"

	"github.com/lkc-containers/lkc/internal/container"
	"github.com/lkc-containers/lkc/internal/steplog"
)

// The container changes hands at one point: the commit. The target
// restores it frozen (the final dump froze the source, and CRIU restores
// the freezer state before it lets the tasks go) and says restored; its
// copy has not run, and until the source sends the commit the source's
// copy is the container: any failure or abort rolls back, the source
// resumes its copy, and the target deletes its own (when its session
// fails, when its connection to the source breaks, or when a restarted
// lkc serve finds it still marked pending). On the commit, the target
// lets its copy run and confirms; the source then deletes its own. A
// commit sent but not confirmed leaves the source unable to know whether
// the target runs the container: the migration is in doubt.

// ErrInDoubt marks a migration whose target may run the container, or
// not, without having said which (it died, or the connection broke,
// after the commit left): the source's copy stays paused and off the
// network, so that it never runs in both places, until whoever can tell
// which side has it resumes or deletes it.
var ErrInDoubt = errors.New("in doubt")

// inDoubt is the error of a migration left in doubt by why, saying how
// to resolve it.
func (s *session) inDoubt(why string, err error) error {
	id := s.o.ID
	return fmt.Errorf("%w: %s; the source copy stays paused and off the network, as the target may run it "+
		"(once the target's lkc serve has ended this session or was restarted: if `lkc state %s` there finds it, "+
		"`lkc delete --force %s` here, else `lkc resume %s` here): %w", ErrInDoubt, why, id, id, id, err)
}

// abort cuts the connection when the migration's context ends, why: the
// step under way fails at once (a dump stops at CRIU's next safe point,
// as checkpoint --all's does: CRIU killed half way would leave its code
// in the container's tasks), the migration rolls back, and the target,
// whose sender went away, drops what it received or restored. Once the
// commit is under way, it cuts nothing: the migration finishes, and the
// summary says why.
func (s *session) abort(why error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.running:
		s.letFinish = fmt.Sprintf("not aborted (%v): %s", why, s.ranWhy())
	case s.commit:
		s.letFinish = fmt.Sprintf("not aborted (%v): its commit had begun, and the target may own it", why)
	default:
		s.aborted = true
		s.endDumps(why)
		s.c.nc.Close()
	}
}

// ranWhy says why a migration whose target runs the container goes on.
func (s *session) ranWhy() string {
	if s.mode == ModePostcopy {
		return "the target ran it already, its memory still coming from here (post-copy)"
	}
	return "the target ran it already"
}

// handOver sends the commit, unless an abort came first, and waits until
// the target confirms that it lets the container run: the downtime ends
// here.
func (s *session) handOver() error {
	s.mu.Lock()
	if s.aborted {
		s.mu.Unlock()
		return errors.New("aborted before the commit")
	}
	s.commit = true
	s.mu.Unlock()
	s.progress(PhaseCommit, 0, 0, 0)
	if err := s.c.send(opCommit, nil); err != nil {
		return s.inDoubt("the target did not confirm the commit", err)
	}
	if err := s.c.expect(opCommitted, nil); err != nil {
		return s.inDoubt("the target did not confirm the commit", err)
	}
	s.sum.DowntimeMS = ms(time.Since(s.frozen))
	s.leaveTurn()
	s.mu.Lock()
	s.running = true
	s.mu.Unlock()
	steplog.Printf("migrate %s: the target runs it: past aborting", s.o.ID)
	return nil
}

// handedOver says the source's copy may no longer be resumed: the commit
// has left, and the target may run the container.
func (s *session) handedOver() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commit
}

// finish deletes the source's frozen copy: the target runs the container.
func (s *session) finish() {
	if err := container.Delete(s.o.Root, s.o.ID, true, s.o.Warn); err != nil {
		s.o.Warn(fmt.Errorf("deleting the source copy of %s: %w", s.o.ID, err))
	}
}

// rollback returns the source to running after a failure, unless the
// target may run the container.
func (s *session) rollback() {
	if s.handedOver() {
		return
	}
	if s.netDown {
		for _, v := range s.cutOff {
			if err := isolate(v, true); err != nil {
				s.o.Warn(err)
			}
		}
	}
	if s.paused {
		if err := container.Resume(s.o.Root, s.o.ID); err != nil {
			s.o.Warn(fmt.Errorf("resuming %s on the source: %w", s.o.ID, err))
		}
	}
}
