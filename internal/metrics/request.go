package metrics

import (
	"bufio"
	"errors"
	"strconv"
	"strings"
)

// request is what the server needs of an HTTP/1.x request's head.
type request struct {
	method, path string
	// http11 is a 1.1 (or later 1.x) request: keep-alive by default.
	http11 bool
	// close: the connection ends after the answer, because the client
	// asked, or spoke 1.0 without keep-alive, or sent a body, which the
	// server does not read.
	close   bool
	hasBody bool
}

// statusError is a request the server answers with status and msg, then
// closes the connection.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return strconv.Itoa(e.status) + " " + e.msg }

func bad(msg string) error { return &statusError{400, msg} }

// readRequest reads one request's line and headers (RFC 9112), at most
// maxHead bytes, skipping empty lines before the request line as
// servers should. br must buffer maxHead bytes, so that a longer line is
// ErrBufferFull. Errors are a *statusError for what was read, or the
// connection's.
func readRequest(br *bufio.Reader) (*request, error) {
	n := 0
	line := func() (string, error) {
		b, err := br.ReadSlice('\n')
		n += len(b)
		if n > maxHead || errors.Is(err, bufio.ErrBufferFull) {
			return "", &statusError{431, "request line and headers exceed 8 KiB"}
		}
		if err != nil {
			return "", err
		}
		return strings.TrimSuffix(string(b[:len(b)-1]), "\r"), nil
	}
	l, err := line()
	for err == nil && l == "" {
		l, err = line()
	}
	if err != nil {
		return nil, err
	}
	req, err := parseRequestLine(l)
	if err != nil {
		return nil, err
	}
	h := headers{}
	for {
		if l, err = line(); err != nil {
			return nil, err
		}
		if l == "" {
			break
		}
		if err := h.add(l); err != nil {
			return nil, err
		}
	}
	return req, h.apply(req)
}

// parseRequestLine parses "METHOD SP target SP HTTP/1.x". The target is
// an origin-form path (its query ignored) or an absolute URI's path.
func parseRequestLine(l string) (*request, error) {
	method, rest, ok1 := strings.Cut(l, " ")
	target, version, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !isToken(method) || target == "" || !isVisible(target) {
		return nil, bad("malformed request line")
	}
	major, minor, ok := strings.Cut(strings.TrimPrefix(version, "HTTP/"), ".")
	if !strings.HasPrefix(version, "HTTP/") || !ok || len(major) != 1 || len(minor) != 1 ||
		!isDigit(major[0]) || !isDigit(minor[0]) {
		return nil, bad("malformed HTTP version")
	}
	if major != "1" {
		return nil, &statusError{505, "only HTTP/1.x is served"}
	}
	if s, ok := strings.CutPrefix(target, "http://"); ok {
		if i := strings.IndexByte(s, '/'); i >= 0 {
			target = s[i:]
		} else {
			target = "/"
		}
	}
	path, _, _ := strings.Cut(target, "?")
	return &request{method: method, path: path, http11: minor != "0"}, nil
}

// headers are the fields the server acts on, gathered from the lines.
type headers struct {
	hosts, lengths   []string
	chunked          bool
	close, keepAlive bool
}

// add parses one "name: value" line (an obsolete folded line, a space
// before the colon or a control character is refused, RFC 9112 5).
func (h *headers) add(l string) error {
	name, value, ok := strings.Cut(l, ":")
	if !ok || !isToken(name) {
		return bad("malformed header line")
	}
	value = strings.Trim(value, " \t")
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
			return bad("control character in header " + name)
		}
	}
	switch strings.ToLower(name) {
	case "host":
		h.hosts = append(h.hosts, value)
	case "content-length":
		h.lengths = append(h.lengths, value)
	case "transfer-encoding":
		h.chunked = true
	case "connection":
		for _, opt := range strings.Split(value, ",") {
			opt = strings.Trim(opt, " \t")
			h.close = h.close || strings.EqualFold(opt, "close")
			h.keepAlive = h.keepAlive || strings.EqualFold(opt, "keep-alive")
		}
	}
	return nil
}

// apply checks the fields against each other and sets req's connection
// and body flags: a 1.1 request names exactly one Host, Content-Lengths
// agree and are numbers.
func (h *headers) apply(req *request) error {
	if req.http11 && len(h.hosts) != 1 || len(h.hosts) > 1 {
		return bad("a request must have one Host header")
	}
	for _, v := range h.lengths {
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil || v != h.lengths[0] {
			return bad("invalid Content-Length")
		}
		req.hasBody = req.hasBody || n > 0
	}
	req.hasBody = req.hasBody || h.chunked
	req.close = h.close || !req.http11 && !h.keepAlive || req.hasBody
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isToken says whether s is an RFC 9110 token (a method, a field name).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) && !('a' <= c|0x20 && c|0x20 <= 'z') && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return s != ""
}

// isVisible says whether s is printable ASCII without spaces.
func isVisible(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
