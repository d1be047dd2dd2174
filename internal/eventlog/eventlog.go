// Package eventlog is the one definition of the OOM policy event log
// (docs/oom.md, "Events"): JSON lines in runc's event envelope
// {"type","id","data"}, appended by the daemon's oom service to a
// container's <root>/<id>/events.jsonl or a group's
// <groups.dir>/<name>.events.jsonl, and read by `lkc events` and `lkc
// group events`. Its one reason to change is that file's format; a leaf.
package eventlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// MaxSize caps a log: past it, the file is renamed to Rotated(path) and
// a new one begins, so a container held for days fills no disk.
const MaxSize = 1 << 20

// Rotated is where the older half of a log lives.
func Rotated(path string) string { return path + ".1" }

// Record is one event as logged.
type Record struct {
	Type string          `json:"type"`
	ID   string          `json:"id"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Append adds one line with a single O_APPEND write, whole lines even with
// several writers, rotating the log first when it has grown past MaxSize.
func Append(path string, line []byte) error {
	if fi, err := os.Stat(path); err == nil && fi.Size() > MaxSize {
		os.Rename(path, Rotated(path))
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("event log %s: %w", path, err)
	}
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("event log %s: %w", path, err)
	}
	return nil
}

// Reader follows a log: each Next returns the records appended since the
// last one. A missing log is empty (nothing acted yet).
type Reader struct {
	path string
	off  int64
	part []byte // a line whose end is not written yet
}

// Follow reads path from its end: only what is appended from now on.
func Follow(path string) *Reader {
	r := &Reader{path: path}
	if fi, err := os.Stat(path); err == nil {
		r.off = fi.Size()
	}
	return r
}

// FromStart reads path from its beginning.
func FromStart(path string) *Reader { return &Reader{path: path} }

// Next returns the records appended since the last call. A log that got
// shorter was rotated: it is read again from its start. Lines that are not
// records are skipped.
func (r *Reader) Next() []Record {
	f, err := os.Open(r.path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() < r.off {
		r.off, r.part = 0, nil
	}
	b, err := io.ReadAll(io.NewSectionReader(f, r.off, 1<<30))
	if err != nil {
		return nil
	}
	r.off += int64(len(b))
	b = append(r.part, b...)
	end := bytes.LastIndexByte(b, '\n') + 1
	r.part = append([]byte(nil), b[end:]...)
	var out []Record
	for _, line := range bytes.Split(b[:end], []byte("\n")) {
		var rec Record
		if json.Unmarshal(line, &rec) == nil && rec.Type != "" {
			out = append(out, rec)
		}
	}
	return out
}
