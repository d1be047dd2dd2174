package cli

import (
	"reflect"
	"testing"
)

// TestParseArgsOrder checks runc's argument order: a command's flags
// anywhere, with or without their value attached, and after the first
// argument anything else taken as an argument.
func TestParseArgsOrder(t *testing.T) {
	cases := []struct {
		args       []string
		firstOnly  bool
		pos        []string
		force, all bool
		format     string
	}{
		{[]string{"id", "--force"}, false, []string{"id"}, true, false, ""},
		{[]string{"-f", "id"}, false, []string{"id"}, true, false, ""},
		{[]string{"id", "KILL", "--all", "--format", "json"}, false, []string{"id", "KILL"}, false, true, "json"},
		{[]string{"id", "--format=json", "-1", "--bogus"}, false, []string{"id", "-1", "--bogus"}, false, false, "json"},
		{[]string{"id", "--", "--force"}, false, []string{"id", "--force"}, false, false, ""},
		{[]string{"--", "--force"}, false, []string{"--force"}, false, false, ""},
		{[]string{"-f", "id", "echo", "--force"}, true, []string{"id", "echo", "--force"}, true, false, ""},
	}
	for _, c := range cases {
		fs := newFlags("t")
		force := fs.Bool("force", false, "")
		fs.BoolVar(force, "f", false, "")
		all := fs.Bool("all", false, "")
		format := fs.String("format", "", "")
		pos, err := parseArgs(fs, c.args, c.firstOnly)
		if err != nil || !reflect.DeepEqual(pos, c.pos) || *force != c.force || *all != c.all || *format != c.format {
			t.Errorf("%q: got %q force=%v all=%v format=%q err=%v, want %q %v %v %q",
				c.args, pos, *force, *all, *format, err, c.pos, c.force, c.all, c.format)
		}
	}
}
