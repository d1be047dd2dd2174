package metrics

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

const testBody = "# TYPE a gauge\na 1\n"

// startServer serves testBody on /metrics on a loopback port, with the
// timeouts set by tune if not nil.
func startServer(t *testing.T, tune func(*server)) (*server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(l, "/metrics", func() []byte { return []byte(testBody) }, t.Logf)
	if tune != nil {
		tune(s)
	}
	go s.serve()
	t.Cleanup(s.close)
	return s, l.Addr().String()
}

// exchange sends raw on a new connection and returns all the server
// answers until it closes the connection.
func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v (read %q)", raw, err, out)
	}
	return string(out)
}

func TestServerAnswers(t *testing.T) {
	_, addr := startServer(t, nil)
	c := &http.Client{Timeout: 5 * time.Second}
	for _, tc := range []struct {
		method, path string
		status       int
		body, ctype  string
	}{
		{"GET", "/metrics", 200, testBody, contentType},
		{"GET", "/metrics?x=1", 200, testBody, contentType},
		{"HEAD", "/metrics", 200, "", contentType},
		{"GET", "/", 404, "404 page not found\n", "text/plain; charset=utf-8"},
		{"GET", "/metricsx", 404, "404 page not found\n", "text/plain; charset=utf-8"},
		{"POST", "/metrics", 405, "method not allowed\n", "text/plain; charset=utf-8"},
	} {
		req, err := http.NewRequest(tc.method, "http://"+addr+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.status || string(body) != tc.body || resp.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("%s %s: %s %q %q, want %d %q %q", tc.method, tc.path, resp.Status,
				resp.Header.Get("Content-Type"), body, tc.status, tc.ctype, tc.body)
		}
		if tc.method == "HEAD" && resp.ContentLength != int64(len(testBody)) {
			t.Errorf("HEAD: Content-Length %d, want %d", resp.ContentLength, len(testBody))
		}
		if tc.status == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("405 without Allow: GET, HEAD: %v", resp.Header)
		}
		if resp.Header.Get("Date") == "" {
			t.Errorf("%s %s: no Date", tc.method, tc.path)
		}
	}
}

// Two requests on one HTTP/1.1 connection, then two more pipelined, the
// last asking Connection: close, which ends the connection after its
// answer.
func TestServerKeepAlive(t *testing.T) {
	_, addr := startServer(t, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	read := func(method string, wantClose bool) {
		t.Helper()
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		want := testBody
		if method == "HEAD" {
			want = ""
		}
		if err != nil || resp.StatusCode != 200 || string(body) != want || resp.Close != wantClose {
			t.Fatalf("%s: %s close %v %q %v, want close %v", method, resp.Status, resp.Close, body, err, wantClose)
		}
	}
	get := "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
	io.WriteString(c, get)
	read("GET", false)
	io.WriteString(c, get)
	read("GET", false)
	io.WriteString(c, get+"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	read("GET", false)
	read("HEAD", true)
	if rest, err := io.ReadAll(br); len(rest) != 0 || err != nil {
		t.Fatalf("after Connection: close: %q %v, want the end", rest, err)
	}
}

// HTTP/1.0 closes after the answer unless it asks for keep-alive.
func TestServerHTTP10(t *testing.T) {
	_, addr := startServer(t, nil)
	out := exchange(t, addr, "GET /metrics HTTP/1.0\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") || !strings.Contains(out, "\r\nConnection: close\r\n") ||
		!strings.HasSuffix(out, "\r\n\r\n"+testBody) {
		t.Errorf("HTTP/1.0 GET: %q", out)
	}
	out = exchange(t, addr, "GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /metrics HTTP/1.0\r\n\r\n")
	if strings.Count(out, "HTTP/1.1 200 OK") != 2 || !strings.Contains(out, "\r\nConnection: keep-alive\r\n") {
		t.Errorf("HTTP/1.0 keep-alive: %q", out)
	}
}

// What cannot be parsed, or is too long, or carries a body, gets one
// error answer and the connection closes.
func TestServerRefuses(t *testing.T) {
	_, addr := startServer(t, nil)
	huge := "GET /metrics HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("a", 100)+"\r\n", 90) + "\r\n"
	for raw, status := range map[string]string{
		"GET /metrics\r\n\r\n":                                                                         "400",
		"GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n":                                                    "400",
		"GET /metrics HTTP/1.1 x\r\nHost: x\r\n\r\n":                                                   "400",
		"GET /metrics FTP/1.1\r\nHost: x\r\n\r\n":                                                      "400",
		"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n":                                                     "505",
		"GET /metrics HTTP/1.1\r\n\r\n":                                                                "400", // no Host
		"GET /metrics HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n":                                          "400",
		"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n":                                                    "400",
		"GET /metrics HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n":                                          "400",
		"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n":                                          "400",
		"GET /metrics HTTP/1.1\r\nHost: x\x00\r\n\r\n":                                                 "400",
		"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n":                               "400",
		"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody":                            "400",
		"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n": "400",
		"GET /" + strings.Repeat("a", maxHead) + " HTTP/1.1\r\nHost: x\r\n\r\n":                        "431",
		huge: "431",
	} {
		out := exchange(t, addr, raw)
		if !strings.HasPrefix(out, "HTTP/1.1 "+status+" ") || !strings.Contains(out, "\r\nConnection: close\r\n") {
			name := raw
			if len(name) > 80 {
				name = name[:80] + "..."
			}
			t.Errorf("%q: answered %q, want %s and close", name, out, status)
		}
	}
	// A body on another method is not read either: 405, then the close.
	out := exchange(t, addr, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
	if !strings.HasPrefix(out, "HTTP/1.1 405 ") || !strings.Contains(out, "\r\nConnection: close\r\n") {
		t.Errorf("POST with a body: %q", out)
	}
}

// A client that sends half a request holds only its own connection
// (another is answered while it stalls) and only until the head
// timeout; an idle connection ends at the idle timeout.
func TestServerSlowClient(t *testing.T) {
	s, addr := startServer(t, func(s *server) { s.head, s.idle = 2*time.Second, 2500*time.Millisecond })
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	start := time.Now()
	io.WriteString(slow, "GET /metrics HTTP/1.1\r\nHo")
	if out := exchange(t, addr, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(out, "HTTP/1.1 200 ") {
		t.Fatalf("while a client is slow: %q", out)
	}
	slow.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := slow.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the slow connection ended before the other was answered: %v", err)
	}
	for _, c := range []net.Conn{slow, idle} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("a stalled connection: read %d, %v; want the server's close", n, err)
		}
	}
	if d := time.Since(start); d < s.head || d > 8*time.Second {
		t.Errorf("stalled connections closed after %v, want the timeouts (%v, %v)", d, s.head, s.idle)
	}
}

// close ends the listener and the open connections.
func TestServerClose(t *testing.T) {
	s, addr := startServer(t, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	s.close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(br); err != nil {
		t.Errorf("a kept-alive connection after close: %v, want the end", err)
	}
	if c2, err := net.Dial("tcp", addr); err == nil {
		c2.Close()
		t.Error("the listener still accepts after close")
	}
}

// TestServerBoundsConnections: clients that open connections and send
// nothing hold them for the idle timeout; the server keeps at most 64
// (the rest wait in the listen backlog, in the kernel), so a flood
// cannot take every fd of the daemon's worker, which its other services
// need.
func TestServerBoundsConnections(t *testing.T) {
	s, addr := startServer(t, nil)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 80 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	time.Sleep(200 * time.Millisecond) // the server accepts what it will
	s.mu.Lock()
	held := len(s.conns)
	s.mu.Unlock()
	if held > 64 {
		t.Errorf("the server holds %d idle connections, want at most 64", held)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	if out := exchange(t, addr, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(out, "HTTP/1.1 200 ") {
		t.Errorf("after the flood: %q", out)
	}
}
