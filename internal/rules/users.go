package rules

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// Table is Users read from passwd and group files.
type Table struct {
	uids    map[string]int
	names   map[int]string
	gids    map[string]int
	gnames  map[int]string
	members map[string][]string
}

// ParseUsers reads /etc/passwd and /etc/group formats (name:x:id:...;
// a group's fourth field lists its members, comma-separated).
func ParseUsers(passwd, group io.Reader) *Table {
	t := &Table{uids: map[string]int{}, names: map[int]string{}, gids: map[string]int{},
		gnames: map[int]string{}, members: map[string][]string{}}
	eachEntry(passwd, func(f []string) {
		if id, err := strconv.Atoi(f[2]); err == nil {
			t.uids[f[0]] = id
			if _, dup := t.names[id]; !dup {
				t.names[id] = f[0]
			}
		}
	})
	eachEntry(group, func(f []string) {
		if id, err := strconv.Atoi(f[2]); err == nil {
			t.gids[f[0]] = id
			if _, dup := t.gnames[id]; !dup {
				t.gnames[id] = f[0]
			}
		}
		if len(f) > 3 && f[3] != "" {
			t.members[f[0]] = strings.Split(f[3], ",")
		}
	})
	return t
}

func eachEntry(r io.Reader, do func([]string)) {
	if r == nil {
		return
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if f := strings.Split(sc.Text(), ":"); len(f) >= 3 && !strings.HasPrefix(f[0], "#") {
			do(f)
		}
	}
}

// UID implements Users.
func (t *Table) UID(name string) (int, bool) { id, ok := t.uids[name]; return id, ok }

// GID implements Users.
func (t *Table) GID(name string) (int, bool) { id, ok := t.gids[name]; return id, ok }

// Members implements Users.
func (t *Table) Members(group string) []string { return t.members[group] }

// UserName implements Users.
func (t *Table) UserName(uid int) (string, bool) { n, ok := t.names[uid]; return n, ok }

// GroupName implements Users.
func (t *Table) GroupName(gid int) (string, bool) { n, ok := t.gnames[gid]; return n, ok }

// Unknown lists, for each rule, a user or group name it gives that t
// does not know: such a rule matches nobody (libcgroup skips it with a
// warning, and the % lines under it).
func Unknown(rs []*Rule, t *Table) []string {
	var out []string
	for _, r := range rs {
		where := r.File + ":" + strconv.Itoa(r.Line)
		if _, ok := t.UID(r.User); r.User != "" && !ok {
			out = append(out, where+": no user "+r.User+" (the rule matches nobody)")
		}
		if _, ok := t.GID(r.Group); r.Group != "" && !ok {
			out = append(out, where+": no group "+r.Group+" (the rule matches nobody)")
		}
	}
	return out
}
