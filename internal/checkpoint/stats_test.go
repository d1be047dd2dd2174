package checkpoint

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/stats"
)

// writeStats writes a stats-dump image as CRIU frames it, cut to n bytes
// (n < 0: whole).
func writeStats(t *testing.T, dir string, frozen uint32, n int) {
	t.Helper()
	f, s, w := uint32(1), uint64(2), uint64(3)
	payload, err := (&stats.StatsEntry{Dump: &stats.DumpStatsEntry{
		FreezingTime: &f, FrozenTime: &frozen, MemdumpTime: &f, MemwriteTime: &f,
		PagesScanned: &s, PagesSkippedParent: &s, PagesWritten: &w, PagesLazy: &s,
	}}).MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	b := binary.LittleEndian.AppendUint32(nil, stats.ImgServiceMagic)
	b = binary.LittleEndian.AppendUint32(b, stats.StatsMagic)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	if n >= 0 {
		b = b[:n]
	}
	if err := os.WriteFile(filepath.Join(dir, stats.StatsDump), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestReadDumpStats(t *testing.T) {
	dir := t.TempDir()
	writeStats(t, dir, 4242, -1)
	st, err := ReadDumpStats(dir)
	if err != nil || st.GetFrozenTime() != 4242 || st.GetPagesWritten() != 3 {
		t.Fatalf("ReadDumpStats = %v, %v; want frozen 4242, 3 pages written", st, err)
	}
	for _, n := range []int{0, 11, 14} {
		writeStats(t, dir, 1, n)
		if st, err := ReadDumpStats(dir); err == nil {
			t.Errorf("a stats image cut to %d bytes was read: %v", n, st)
		}
	}
}
