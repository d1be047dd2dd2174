package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/checkpoint-restore/go-criu/v8/stats"
)

// ReadDumpStats reads the stats-dump image CRIU writes into the images
// directory dir after a dump: two magics, a length and a stats_entry
// message (go-criu's stats package; its own reader does not check the
// length against the file's, so the framing is read here).
func ReadDumpStats(dir string) (*stats.DumpStatsEntry, error) {
	path := filepath.Join(dir, stats.StatsDump)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	bad := func(err error) (*stats.DumpStatsEntry, error) { return nil, fmt.Errorf("reading %s: %w", path, err) }
	if len(data) < stats.PayloadOffset || binary.LittleEndian.Uint32(data) != stats.ImgServiceMagic ||
		binary.LittleEndian.Uint32(data[stats.SecondaryMagicOffset:]) != stats.StatsMagic {
		return bad(errors.New("not a CRIU stats image"))
	}
	size := int(binary.LittleEndian.Uint32(data[stats.SizeOffset:]))
	if len(data) < stats.PayloadOffset+size {
		return bad(errors.New("truncated"))
	}
	var entry stats.StatsEntry
	if err := entry.UnmarshalVT(data[stats.PayloadOffset : stats.PayloadOffset+size]); err != nil {
		return bad(err)
	}
	if entry.GetDump() == nil {
		return bad(errors.New("no dump statistics"))
	}
	return entry.GetDump(), nil
}
