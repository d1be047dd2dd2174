package metrics

// The endpoint speaks a small subset of HTTP/1.1 itself instead of using
// net/http. The daemon is the same binary as every `lkc run`, `exec`,
// `state` and the container's `lkc init`, and net/http links 59 more
// packages (crypto/tls, x509, http2, mime...) whose init functions and
// pages each of those invocations pays for: without them (and without
// cilium/ebpf) `lkc run` measured 17 % faster, exec 11 %. A scraper needs
// little: GET (and HEAD) of one path, keep-alive, bounded reads.

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// maxHead bounds a request's line and headers together (431 beyond).
	maxHead = 8 << 10
	// contentType is the text exposition format's, version 0.0.4.
	contentType = "text/plain; version=0.0.4; charset=utf-8"
	// maxConns bounds the connections held at once: each idle one is kept
	// two minutes, and the endpoint may face a network, so without a
	// bound a flood would take every fd of the worker, whose other
	// services need them. Beyond it connections wait in the listen
	// backlog; a scraper needs one or two.
	maxConns = 64
)

// server answers GET and HEAD of path with body() on every connection
// its listener accepts, one goroutine per connection, so a slow client
// holds only its own.
type server struct {
	l    net.Listener
	path string
	body func() []byte
	logf func(string, ...any)
	// idle bounds the wait for a request's first byte, head the reading
	// of its line and headers, write the sending of the answer.
	idle, head, write time.Duration

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
	// room holds a token per connection held (maxConns); done ends a
	// serve waiting for room.
	room chan struct{}
	done chan struct{}
}

func newServer(l net.Listener, path string, body func() []byte, logf func(string, ...any)) *server {
	return &server{l: l, path: path, body: body, logf: logf,
		idle: 2 * time.Minute, head: 5 * time.Second, write: 30 * time.Second,
		conns: map[net.Conn]bool{}, room: make(chan struct{}, maxConns), done: make(chan struct{})}
}

// serve accepts until close. A failed accept that is not the close (out
// of fds, a connection reset before accept) is retried after a pause
// growing to one second, as the condition usually passes.
func (s *server) serve() {
	pause := 5 * time.Millisecond
	for {
		select {
		case s.room <- struct{}{}:
		case <-s.done:
			return
		}
		c, err := s.l.Accept()
		if err != nil {
			<-s.room
			if s.isClosed() {
				return
			}
			s.logf("metrics: accepting on %s: %v", s.l.Addr(), err)
			time.Sleep(pause)
			pause = min(2*pause, time.Second)
			continue
		}
		pause = 5 * time.Millisecond
		if !s.track(c) {
			c.Close()
			<-s.room
			return
		}
		go s.handle(c)
	}
}

// close stops accepting and closes every connection.
func (s *server) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		close(s.done)
	}
	s.closed = true
	s.l.Close()
	for c := range s.conns {
		c.Close()
	}
}

func (s *server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.conns[c] = true
	}
	return !s.closed
}

func (s *server) untrack(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	<-s.room
}

// handle answers c's requests in order until the client closes, asks to
// close, times out or sends what it cannot parse. Failed reads and
// writes are the client's business and are not logged.
func (s *server) handle(c net.Conn) {
	defer s.untrack(c)
	defer c.Close()
	br := bufio.NewReaderSize(c, maxHead)
	for {
		c.SetReadDeadline(time.Now().Add(s.idle))
		if _, err := br.Peek(1); err != nil {
			return
		}
		c.SetReadDeadline(time.Now().Add(s.head))
		req, err := readRequest(br)
		var bad *statusError
		if errors.As(err, &bad) {
			req = &request{close: true}
			c.SetWriteDeadline(time.Now().Add(s.write))
			if writeResponse(c, req, bad.status, "", []byte(bad.msg+"\n")) == nil {
				linger(c)
			}
			return
		}
		if err != nil {
			return
		}
		c.SetWriteDeadline(time.Now().Add(s.write))
		if err := s.answer(c, req); err != nil {
			return
		}
		if req.close {
			linger(c)
			return
		}
	}
}

// answer routes req: 404 for another path, 405 for another method, 400
// for a GET or HEAD with a body (it is not read, so the connection then
// closes), else 200 with body().
func (s *server) answer(w io.Writer, req *request) error {
	switch {
	case req.path != s.path:
		return writeResponse(w, req, 404, "", []byte("404 page not found\n"))
	case req.method != "GET" && req.method != "HEAD":
		return writeResponse(w, req, 405, "Allow: GET, HEAD\r\n", []byte("method not allowed\n"))
	case req.hasBody:
		return writeResponse(w, req, 400, "", []byte("a request body is not accepted\n"))
	}
	return writeResponse(w, req, 200, "", s.body())
}

// linger shuts down the sending side after the last answer and reads
// what the client still sends for a moment before the close: closing a
// socket with unread data resets the connection, and the reset can
// destroy the answer before the client reads it.
func linger(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.Copy(io.Discard, io.LimitReader(c, 256<<10))
}

var statusText = map[int]string{
	200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
	431: "Request Header Fields Too Large", 505: "HTTP Version Not Supported",
}

// writeResponse writes status, the headers and body in one writev: a
// 200 carries contentType, others plain text; HEAD gets the headers
// only, with the Content-Length the GET would have.
func writeResponse(w io.Writer, req *request, status int, extra string, body []byte) error {
	var h strings.Builder
	h.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + statusText[status] + "\r\n")
	h.WriteString("Date: " + time.Now().UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT") + "\r\n")
	if status == 200 {
		h.WriteString("Content-Type: " + contentType + "\r\n")
	} else {
		h.WriteString("Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n")
	}
	h.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n" + extra)
	if req.close {
		h.WriteString("Connection: close\r\n")
	} else if !req.http11 {
		h.WriteString("Connection: keep-alive\r\n")
	}
	h.WriteString("\r\n")
	bufs := net.Buffers{[]byte(h.String())}
	if req.method != "HEAD" {
		bufs = append(bufs, body)
	}
	_, err := bufs.WriteTo(w)
	return err
}
