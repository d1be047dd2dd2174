package eventlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFollowSeesAppendsAndRotation: a follower gets only what is appended
// after it started, a line written in two parts once it is whole, and the
// new file's records after a rotation.
func TestFollowSeesAppendsAndRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := Append(path, []byte(`{"type":"old","id":"g"}`)); err != nil {
		t.Fatal(err)
	}
	r := Follow(path)
	if got := r.Next(); len(got) != 0 {
		t.Fatalf("follower read %v before anything was appended", got)
	}
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"type":"half",`)
	if got := r.Next(); len(got) != 0 {
		t.Fatalf("follower read %v from half a line", got)
	}
	f.WriteString(`"id":"g","data":{"n":1}}` + "\n")
	f.Close()
	if got := r.Next(); len(got) != 1 || got[0].Type != "half" || string(got[0].Data) != `{"n":1}` {
		t.Fatalf("follower read %v, want the completed line", got)
	}
	if err := os.WriteFile(path, []byte(strings.Repeat(" ", MaxSize+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	r.Next()
	if err := Append(path, []byte(`{"type":"new","id":"g"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(Rotated(path)); err != nil {
		t.Fatalf("no rotated log past MaxSize: %v", err)
	}
	if got := r.Next(); len(got) != 1 || got[0].Type != "new" {
		t.Fatalf("follower read %v after the rotation, want the new record", got)
	}
	if got := FromStart(path).Next(); len(got) != 1 || got[0].Type != "new" {
		t.Fatalf("FromStart read %v, want the one record", got)
	}
}
