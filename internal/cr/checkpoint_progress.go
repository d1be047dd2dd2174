package cr

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lkc-containers/lkc/internal/checkpoint"
)

// watchProgress reports, every 200 ms while a dump runs, how many bytes of
// memory CRIU has written to dir, then a summary line. With w nil it does
// nothing. The returned function ends the watch.
func watchProgress(w io.Writer, dir string) func(ok bool) {
	if w == nil {
		return func(bool) {}
	}
	start := time.Now()
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if n := pagesBytes(dir); n > 0 {
					fmt.Fprintf(w, "\rcheckpoint: %s written", humanBytes(n))
				}
			}
		}
	}()
	return func(ok bool) {
		close(done)
		<-finished
		if !ok {
			fmt.Fprintln(w)
			return
		}
		line := fmt.Sprintf("\rcheckpoint: %s written in %.1fs", humanBytes(pagesBytes(dir)), time.Since(start).Seconds())
		if st, err := checkpoint.ReadDumpStats(dir); err == nil {
			line += fmt.Sprintf(", frozen %.0f ms", float64(st.GetFrozenTime())/1000)
		}
		fmt.Fprintln(w, line)
	}
}

func pagesBytes(dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "pages-") {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, e.Name())); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", n>>10)
	}
}
