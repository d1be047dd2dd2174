package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/eventlog"
	"github.com/lkc-containers/lkc/internal/groups"
)

// groupEventsTick is how often --follow looks for new lines in the log
// and checks that the group still exists.
const groupEventsTick = 100 * time.Millisecond

// groupEvents runs `lkc group events [--follow] NAME`: the OOM policy
// events the daemon logged for the group (docs/oom.md), in the envelope
// of `lkc events`, one JSON object per line. A group's log outlives any
// one stream, so it prints what is logged (the rotated part first); with
// --follow it goes on with new events and an `oom` event each time the
// kernel reports an OOM in the group's memory cgroup, until the group is
// deleted or lkc is interrupted.
func groupEvents(s *groups.Store, args []string) error {
	fs := newFlags("group events")
	follow := fs.Bool("follow", false, "print new events as they come, until the group is deleted")
	rest, err := parse(fs, args, exactly(1), "lkc group events [--follow] NAME")
	if err != nil {
		return err
	}
	name := rest[0]
	if _, err := s.Get(name); err != nil {
		return err
	}
	out := json.NewEncoder(os.Stdout)
	path := s.EventsPath(name)
	if err := encodeAll(out, eventlog.FromStart(eventlog.Rotated(path)).Next()); err != nil {
		return err
	}
	log := eventlog.FromStart(path)
	if err := encodeAll(out, log.Next()); err != nil || !*follow {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	return followGroup(ctx, s, name, log, out)
}

// followGroup streams group name's new log records and kernel OOM events.
func followGroup(ctx context.Context, s *groups.Store, name string, log *eventlog.Reader, out *json.Encoder) error {
	m, err := s.Manager(name)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ooms, err := m.OOMEvents(ctx)
	if errors.Is(err, cgroups.ErrNotSupported) || errors.Is(err, os.ErrNotExist) {
		ooms = nil // no memory cgroup (yet): the log only
	} else if err != nil {
		return fmt.Errorf("group %s: %w", name, err)
	}
	tick := time.NewTicker(groupEventsTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-ooms:
			if !ok {
				ooms = nil // the cgroup was removed; the definition's end stops the stream
				continue
			}
			if err := out.Encode(eventlog.Record{Type: "oom", ID: name}); err != nil {
				return err
			}
		case <-tick.C:
			if err := encodeAll(out, log.Next()); err != nil {
				return err
			}
			if _, err := s.Get(name); errors.Is(err, groups.ErrNotExist) {
				return nil
			}
		}
	}
}

func encodeAll(out *json.Encoder, recs []eventlog.Record) error {
	for _, rec := range recs {
		if err := out.Encode(rec); err != nil {
			return err
		}
	}
	return nil
}
