package migrate

import (
	"context"
	"fmt"
	"time"

	"github.com/lkc-containers/lkc/internal/container"
)

// Probe asks the receiver at o.Target whether it would take container
// o.ID, and moves nothing: the checks of a migration up to the receiver's
// answer to the offer (the container running here, CRIU here, the
// target's kernel, CRIU, CPU, cgroup mode and bridges, the id free there,
// and room for batch bytes when that is more than the container's own:
// an evacuation's total). A nil error means the migration would start;
// it can still fail later, in the dump or the restore.
func Probe(ctx context.Context, o Options, batch int64) error {
	o.defaults()
	s := &session{o: o, start: time.Now()}
	if err := s.inspect(); err != nil {
		return err
	}
	of, err := s.offer()
	if err != nil {
		return err
	}
	of.Probe, of.BatchBytes = true, batch
	if err := s.connect(ctx); err != nil {
		return err
	}
	defer s.c.nc.Close()
	stop := context.AfterFunc(ctx, func() { s.c.nc.Close() })
	defer stop()
	if err := s.propose(of); err != nil {
		return fmt.Errorf("migrating %s to %s: %w", o.ID, o.Target, err)
	}
	return nil
}

// Need is what migrating container o.ID stores on the target at most:
// its rootfs (unless o.SharedStorage) and its memory now, in bytes.
func Need(o Options) (int64, error) {
	ct, err := container.Inspect(o.Root, o.ID)
	if err != nil {
		return 0, err
	}
	n := ct.DumpBytes()
	if !o.SharedStorage {
		rootfs, err := treeSize(ct.Rootfs())
		if err != nil {
			return 0, err
		}
		n += rootfs
	}
	return n, nil
}
