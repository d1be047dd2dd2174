package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// logf appends one entry to the --log file, in runc's text or json shape,
// which containerd and conmon read back for error messages.
func (g *globals) logf(level, format string, args ...any) {
	if g.log == "" {
		return
	}
	f, err := os.OpenFile(g.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	msg := fmt.Sprintf(format, args...)
	now := time.Now().Format(time.RFC3339Nano)
	if g.logFormat == "json" {
		line, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": now})
		f.Write(append(line, '\n'))
		return
	}
	fmt.Fprintf(f, "time=%q level=%s msg=%q\n", now, level, msg)
}

// warn reports a failure that did not fail the command (a poststart or
// poststop hook): on stderr, as runc does, and in the --log file.
func (g *globals) warn(err error) {
	fmt.Fprintln(os.Stderr, "lkc: warning: "+err.Error())
	g.logf("warning", "%s", err)
}

func (g *globals) debugf(format string, args ...any) {
	if g.debug {
		g.logf("debug", format, args...)
	}
}
