package rules

import (
	"errors"
	"fmt"
	"strings"
)

// parseCgrules reads one cgrules.conf line, as libcgroup reads it:
//
//	<user>[:<process>]  <controllers>  <destination>  [<options>]
//
// user is a name, @group, * (anyone; so is any word that begins with *)
// or % (another destination,
// usually in other hierarchies, for the rule above); controllers are
// comma-separated or *; the one option is "ignore". A % line adds its
// target to the previous rule and returns nil. Fields after the 4th are
// kept in the rule's Extra, and otherwise ignored, as libcgroup reads
// only four: a file that works there loads here, with a warning.
func parseCgrules(words []string, before []*Rule) (*Rule, error) {
	if len(words) < 3 {
		return nil, fmt.Errorf("want <user>[:<process>] <controllers> <destination> [ignore], or lkc's form with ->; got %d fields", len(words))
	}
	var extra []string
	if len(words) > 4 {
		words, extra = words[:4], words[4:]
	}
	user, process, hasProcess := strings.Cut(words[0], ":")
	if hasProcess && process == "" {
		return nil, errors.New("empty process name after ':'")
	}
	t, err := cgrulesTarget(words[1], words[2])
	if err != nil {
		return nil, err
	}
	ignore := false
	if len(words) == 4 {
		for _, o := range strings.Split(words[3], ",") {
			if o != "ignore" {
				return nil, fmt.Errorf("option %q: the only option is ignore", o)
			}
			ignore = true
		}
	}
	if user == "%" {
		if len(before) == 0 {
			return nil, errors.New("% continues the rule above, and there is none")
		}
		prev := before[len(before)-1]
		if hasProcess || len(words) == 4 {
			return nil, errors.New("a % line takes only controllers and a destination (the rule above gives the rest)")
		}
		prev.Targets = append(prev.Targets, t)
		return nil, nil
	}
	r := &Rule{UID: -1, Process: process, Targets: []Target{t}, Ignore: ignore, Extra: extra}
	switch {
	case strings.HasPrefix(user, "*"): // libcgroup looks at the first character only
	case strings.HasPrefix(user, "@"):
		if r.Group = user[1:]; r.Group == "" {
			return nil, errors.New("empty group name after @")
		}
	case user == "":
		return nil, errors.New("empty user")
	default:
		r.User = user
	}
	return r, nil
}

func cgrulesTarget(controllers, dest string) (Target, error) {
	var ctrls []string
	for _, c := range strings.Split(controllers, ",") {
		if c == "" {
			return Target{}, fmt.Errorf("controllers %q: an empty name", controllers)
		}
		ctrls = append(ctrls, c)
	}
	if len(ctrls) > 1 && strings.Contains(controllers, "*") {
		return Target{}, fmt.Errorf("controllers %q: * stands alone", controllers)
	}
	if err := checkTemplate(dest); err != nil {
		return Target{}, err
	}
	if strings.Contains("/"+dest+"/", "/../") {
		return Target{}, fmt.Errorf("destination %q: .. is not allowed", dest)
	}
	return Target{Kind: "cgroup", Name: dest, Controllers: ctrls}, nil
}

// ExtraFields warns of the cgrules lines with fields after the 4th,
// which lkc ignores as libcgroup does: a mistake, maybe, such as a
// destination with a blank in it.
func ExtraFields(rs []*Rule) []string {
	var out []string
	for _, r := range rs {
		if len(r.Extra) > 0 {
			out = append(out, fmt.Sprintf("%s:%d: fields after the 4th ignored, as libcgroup does: %s", r.File, r.Line, strings.Join(r.Extra, " ")))
		}
	}
	return out
}
