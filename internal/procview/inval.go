package procview

import (
	"fmt"
	"os"

	"github.com/lkc-containers/lkc/internal/fuse"
	"golang.org/x/sys/unix"
)

// invalKey is the holder's key for the session's Inval record: a memfd
// of one byte, the fuse.Inval its INIT chose, which the worker that
// mounted the session deposits before serving (InvalUnknown until INIT is
// answered) and writes at INIT. A successor serves a new version as that
// mode wants (fuse.Server.SetInval); a session without the record was
// mounted by a worker that asked FUSE_AUTO_INVAL_DATA.
const invalKey = "proc-inval"

// newInvalRecord makes the record of a new session and deposits it.
func (s *Service) newInvalRecord() (*os.File, error) {
	fd, err := unix.MemfdCreate("lkc-proc-inval", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("/proc view's inval record: %w", err)
	}
	f := os.NewFile(uintptr(fd), "lkc-proc-inval")
	if _, err := f.WriteAt([]byte{byte(fuse.InvalUnknown)}, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("/proc view's inval record: %w", err)
	}
	if err := s.deps.Store.Put(invalKey, f); err != nil {
		f.Close()
		return nil, fmt.Errorf("depositing the inval record: %w", err)
	}
	return f, nil
}

// readInval returns the mode a kept session's record says, InvalAuto when
// there is none (f nil) and InvalUnknown when it cannot be read.
func readInval(f *os.File) fuse.Inval {
	if f == nil {
		return fuse.InvalAuto
	}
	b := make([]byte, 1)
	if n, err := f.ReadAt(b, 0); n != 1 || err != nil || b[0] > byte(fuse.InvalExplicit) {
		return fuse.InvalUnknown
	}
	return fuse.Inval(b[0])
}
