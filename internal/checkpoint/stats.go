package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The stats-dump image CRIU writes after a dump: two magics, a length and a
// stats_entry message (go-criu's stats package describes it; decoded here by
// hand for the reason wire.go gives).
const (
	imgServiceMagic = 0x55105940
	statsMagic      = 0x57093306
)

// DumpStats are CRIU's figures for one dump (times in microseconds).
type DumpStats struct {
	FreezingTime, FrozenTime, MemdumpTime, MemwriteTime uint64
	PagesScanned, PagesSkippedParent, PagesWritten      uint64
	PagesLazy                                           uint64
}

// ReadDumpStats reads the stats-dump image in the images directory dir.
func ReadDumpStats(dir string) (*DumpStats, error) {
	path := filepath.Join(dir, "stats-dump")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	bad := func(err error) (*DumpStats, error) { return nil, fmt.Errorf("reading %s: %w", path, err) }
	if len(data) < 12 || binary.LittleEndian.Uint32(data) != imgServiceMagic || binary.LittleEndian.Uint32(data[4:]) != statsMagic {
		return bad(errors.New("not a CRIU stats image"))
	}
	size := int(binary.LittleEndian.Uint32(data[8:]))
	if len(data) < 12+size {
		return bad(errors.New("truncated"))
	}
	entry, err := fields(data[12 : 12+size])
	if err != nil {
		return bad(err)
	}
	s := &DumpStats{}
	for _, f := range entry {
		if f.num != 1 {
			continue
		}
		dump, err := fields(f.b)
		if err != nil {
			return bad(err)
		}
		for _, d := range dump {
			if p := s.field(d.num); p != nil {
				*p = d.v
			}
		}
	}
	return s, nil
}

func (s *DumpStats) field(num int) *uint64 {
	switch num {
	case 1:
		return &s.FreezingTime
	case 2:
		return &s.FrozenTime
	case 3:
		return &s.MemdumpTime
	case 4:
		return &s.MemwriteTime
	case 5:
		return &s.PagesScanned
	case 6:
		return &s.PagesSkippedParent
	case 7:
		return &s.PagesWritten
	case 9:
		return &s.PagesLazy
	}
	return nil
}
