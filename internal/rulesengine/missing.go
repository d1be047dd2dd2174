package rulesengine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/lkc-containers/lkc/internal/groups"
	"github.com/lkc-containers/lkc/internal/rules"
)

// MissingGroups warns of the rules whose target group is not defined in
// s: a process such a rule matches stays where it is (the first match
// wins, so no later rule places it) until the group is created. A
// templated name (group=java/%u) makes its own group, nested in its
// parent group, which must exist; a parent that is a template itself
// depends on the process and is not checked.
func MissingGroups(rs []*rules.Rule, s *groups.Store) []string {
	var out []string
	for _, r := range rs {
		for _, t := range r.Targets {
			need := t.Name
			if strings.Contains(need, "%") {
				need = need[:max(0, strings.LastIndexByte(need, '/'))]
			}
			if t.Kind != "group" || need == "" || strings.Contains(need, "%") {
				continue
			}
			if _, err := s.Get(need); errors.Is(err, groups.ErrNotExist) {
				out = append(out, fmt.Sprintf("%s:%d: no resource group %s (until lkc group create %s, a process the rule matches stays where it is)", r.File, r.Line, need, need))
			}
		}
	}
	return out
}
