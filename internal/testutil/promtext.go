package testutil

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Series is one sample of a Prometheus text exposition: its metric name,
// labels and value.
type Series struct {
	Name   string
	Labels map[string]string
	Value  float64
}

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	metricType = map[string]bool{"counter": true, "gauge": true, "histogram": true, "summary": true, "untyped": true}
)

// ParsePromText parses the Prometheus text format (0.0.4) strictly, as a
// check of a server's output: every line well formed, HELP and TYPE at
// most once per family and before its samples, a family's samples
// together, no series twice, counters not negative, and a final newline.
// It returns the samples in order and the TYPE of each family.
func ParsePromText(text string) ([]Series, map[string]string, error) {
	if text != "" && !strings.HasSuffix(text, "\n") {
		return nil, nil, fmt.Errorf("no newline at the end")
	}
	p := &promParser{types: map[string]string{}, help: map[string]bool{}, done: map[string]bool{}, seen: map[string]bool{}}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if err := p.line(line); err != nil {
			return nil, nil, fmt.Errorf("line %d %q: %w", i+1, line, err)
		}
	}
	return p.out, p.types, nil
}

type promParser struct {
	types   map[string]string
	help    map[string]bool
	done    map[string]bool // families whose samples ended
	seen    map[string]bool // series already given
	current string
	out     []Series
}

func (p *promParser) line(line string) error {
	switch {
	case line == "":
		return nil
	case strings.HasPrefix(line, "# HELP ") || strings.HasPrefix(line, "# TYPE "):
		return p.meta(line)
	case strings.HasPrefix(line, "#"):
		return nil // a comment
	}
	return p.sample(line)
}

func (p *promParser) meta(line string) error {
	f := strings.SplitN(line[7:], " ", 2)
	name := f[0]
	if !metricName.MatchString(name) {
		return fmt.Errorf("bad metric name %q", name)
	}
	if p.done[name] || p.current == name {
		return fmt.Errorf("%s after the family's samples", line[2:6])
	}
	if line[2:6] == "HELP" {
		if p.help[name] {
			return fmt.Errorf("second HELP for %s", name)
		}
		p.help[name] = true
		return nil
	}
	if len(f) != 2 || !metricType[f[1]] {
		return fmt.Errorf("bad TYPE")
	}
	if _, ok := p.types[name]; ok {
		return fmt.Errorf("second TYPE for %s", name)
	}
	p.types[name] = f[1]
	return nil
}

func (p *promParser) sample(line string) error {
	end := strings.IndexAny(line, "{ ")
	if end < 0 {
		return fmt.Errorf("no value")
	}
	s := Series{Name: line[:end], Labels: map[string]string{}}
	if !metricName.MatchString(s.Name) {
		return fmt.Errorf("bad metric name %q", s.Name)
	}
	rest := line[end:]
	if strings.HasPrefix(rest, "{") {
		var err error
		if rest, err = parseLabels(rest[1:], s.Labels); err != nil {
			return err
		}
	}
	fields := strings.Split(strings.TrimPrefix(rest, " "), " ")
	if !strings.HasPrefix(rest, " ") || len(fields) > 2 {
		return fmt.Errorf("want one space, a value and an optional timestamp")
	}
	v, err := parsePromFloat(fields[0])
	if err != nil {
		return err
	}
	if len(fields) == 2 {
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			return fmt.Errorf("bad timestamp %q", fields[1])
		}
	}
	s.Value = v
	return p.add(s, line[:len(line)-len(rest)])
}

// add checks the sample's place: its family's samples together, after
// its TYPE, each series once.
func (p *promParser) add(s Series, key string) error {
	if s.Name != p.current {
		if p.done[s.Name] {
			return fmt.Errorf("family %s continues after another", s.Name)
		}
		if p.current != "" {
			p.done[p.current] = true
		}
		p.current = s.Name
	}
	if p.seen[key] {
		return fmt.Errorf("series given twice")
	}
	p.seen[key] = true
	if p.types[s.Name] == "counter" && (s.Value < 0 || math.IsNaN(s.Value)) {
		return fmt.Errorf("counter %s is %v", s.Name, s.Value)
	}
	p.out = append(p.out, s)
	return nil
}

// parseLabels reads `name="value",...}` into into and returns what
// follows the closing brace.
func parseLabels(s string, into map[string]string) (string, error) {
	for {
		if strings.HasPrefix(s, "}") {
			return s[1:], nil
		}
		eq := strings.Index(s, "=")
		if eq < 0 || !labelName.MatchString(s[:eq]) {
			return "", fmt.Errorf("bad label at %q", s)
		}
		name := s[:eq]
		if _, dup := into[name]; dup {
			return "", fmt.Errorf("label %s twice", name)
		}
		value, rest, err := parseLabelValue(s[eq+1:])
		if err != nil {
			return "", fmt.Errorf("label %s: %w", name, err)
		}
		into[name] = value
		switch {
		case strings.HasPrefix(rest, ","):
			s = rest[1:]
		case strings.HasPrefix(rest, "}"):
			s = rest
		default:
			return "", fmt.Errorf("want , or } after label %s", name)
		}
	}
}

func parseLabelValue(s string) (value, rest string, err error) {
	if !strings.HasPrefix(s, `"`) {
		return "", "", fmt.Errorf("value not quoted")
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			i++
			if i == len(s) {
				return "", "", fmt.Errorf("unfinished escape")
			}
			switch s[i] {
			case '\\', '"':
				b.WriteByte(s[i])
			case 'n':
				b.WriteByte('\n')
			default:
				return "", "", fmt.Errorf(`bad escape \%c`, s[i])
			}
		case '\n':
			return "", "", fmt.Errorf("raw newline")
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("value not closed")
}

func parsePromFloat(s string) (float64, error) {
	switch s {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || strings.ContainsAny(s, "_xXpP") || strings.EqualFold(s, "inf") || strings.EqualFold(s, "infinity") {
		return 0, fmt.Errorf("bad value %q", s)
	}
	return v, nil
}
