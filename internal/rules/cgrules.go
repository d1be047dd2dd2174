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
// or a word that begins with % (the line continues the rule above: see
// continueRule); controllers are comma-separated or *; the one option is
// "ignore". Fields after the 4th are kept in the rule's Extra, and
// otherwise ignored, as libcgroup reads only four: a file that works
// there loads here, with a warning. cont says the line is a % line.
func parseCgrules(words []string) (r *Rule, cont bool, err error) {
	if len(words) < 3 {
		return nil, false, fmt.Errorf("want <user>[:<process>] <controllers> <destination> [ignore], or lkc's form with ->; got %d fields", len(words))
	}
	var extra []string
	if len(words) > 4 {
		words, extra = words[:4], words[4:]
	}
	user, process, hasProcess := strings.Cut(words[0], ":")
	if hasProcess && process == "" {
		return nil, false, errors.New("empty process name after ':'")
	}
	t, err := cgrulesTarget(words[1], words[2])
	if err != nil {
		return nil, false, err
	}
	ignore := false
	if len(words) == 4 {
		for _, o := range strings.Split(words[3], ",") {
			if o != "ignore" {
				return nil, false, fmt.Errorf("option %q: the only option is ignore", o)
			}
			ignore = true
		}
	}
	r = &Rule{UID: -1, Process: process, Targets: []Target{t}, Ignore: ignore, Extra: extra}
	switch {
	case strings.HasPrefix(user, "%"): // libcgroup looks at the first character only
		r.User = user
		return r, true, nil
	case strings.HasPrefix(user, "*"): // so it does here
	case strings.HasPrefix(user, "@"):
		if r.Group = user[1:]; r.Group == "" {
			return nil, false, errors.New("empty group name after @")
		}
	case user == "":
		return nil, false, errors.New("empty user")
	default:
		r.User = user
	}
	return r, false, nil
}

// continueRule adds the target of c, a % line (line n of file), to the
// last rule of before, as libcgroup's rules engine does: a process the
// rule matches goes to every destination of its % lines as well, and
// only that rule decides which processes those are. So what else the %
// line gives is ignored, as there: the rest of its user word (%foo is
// %), a process name, the ignore option, fields after the 4th; each
// but the first is a warning (ExtraFields).
func continueRule(before []*Rule, c *Rule, file string, n int) error {
	if len(before) == 0 {
		return fmt.Errorf("%q continues the rule above, and there is none (a %% line adds a destination to the rule before it)", c.User)
	}
	prev := before[len(before)-1]
	prev.Targets = append(prev.Targets, c.Targets[0])
	var ignored []string
	if c.Process != "" {
		ignored = append(ignored, "process name "+c.Process)
	}
	if c.Ignore {
		ignored = append(ignored, "option ignore")
	}
	if len(c.Extra) > 0 {
		ignored = append(ignored, "fields after the 4th "+strings.Join(c.Extra, " "))
	}
	if len(ignored) > 0 {
		prev.contIgnored = append(prev.contIgnored, fmt.Sprintf("%s:%d: a %% line takes only controllers and a destination (the rule above decides whom it moves); ignored, as libcgroup does: %s", file, n, strings.Join(ignored, ", ")))
	}
	return nil
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

// ExtraFields warns of what lkc ignores of cgrules lines, as libcgroup
// does: fields after the 4th (a mistake, maybe, such as a destination
// with a blank in it), and a % line's process name and option.
func ExtraFields(rs []*Rule) []string {
	var out []string
	for _, r := range rs {
		if len(r.Extra) > 0 {
			out = append(out, fmt.Sprintf("%s:%d: fields after the 4th ignored, as libcgroup does: %s", r.File, r.Line, strings.Join(r.Extra, " ")))
		}
		out = append(out, r.contIgnored...)
	}
	return out
}
