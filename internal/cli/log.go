package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/lkc-containers/lkc/internal/steplog"
)

// logf appends one entry to the --log file, in runc's text or json shape,
// which containerd and conmon read back for error messages.
func (g *globals) logf(level, format string, args ...any) {
	if g.log == "" {
		return
	}
	g.logEntry(level, steplog.Entry{Msg: fmt.Sprintf(format, args...)})
}

// logEntry writes e to the --log file, or with --debug and no --log file
// to stderr, as runc's logger does. A step's name and duration become
// fields of their own ("step", and "duration" in Go's notation).
func (g *globals) logEntry(level string, e steplog.Entry) {
	w := g.logWriter()
	if w == nil {
		return
	}
	now := time.Now().Format(time.RFC3339Nano)
	if g.logFormat == "json" {
		fields := map[string]string{"level": level, "msg": e.Msg, "time": now}
		if e.Step != "" {
			fields["step"], fields["duration"] = e.Step, e.Duration.String()
		}
		line, _ := json.Marshal(fields)
		w.Write(append(line, '\n'))
		return
	}
	if e.Step != "" {
		fmt.Fprintf(w, "time=%q level=%s msg=%q step=%q duration=%s\n", now, level, e.Msg, e.Step, e.Duration)
		return
	}
	fmt.Fprintf(w, "time=%q level=%s msg=%q\n", now, level, e.Msg)
}

// logWriter opens the --log file once, for appending; nil when there is
// nowhere to log.
func (g *globals) logWriter() io.Writer {
	if g.logOut != nil {
		return g.logOut
	}
	switch {
	case g.log != "":
		f, err := os.OpenFile(g.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil
		}
		g.logOut = f
	case g.debug:
		g.logOut = os.Stderr
	default:
		return nil
	}
	return g.logOut
}

// warn reports a failure that did not fail the command (a poststart or
// poststop hook): on stderr, as runc does, and in the --log file.
func (g *globals) warn(err error) {
	fmt.Fprintln(os.Stderr, "lkc: warning: "+err.Error())
	g.logf("warning", "%s", err)
}

func (g *globals) debugf(format string, args ...any) {
	if g.debug {
		g.logEntry("debug", steplog.Entry{Msg: fmt.Sprintf(format, args...)})
	}
}

// enableSteps sends the steps lkc times to the log as debug entries.
func (g *globals) enableSteps() {
	steplog.Enable(func(e steplog.Entry) { g.logEntry("debug", e) })
}
