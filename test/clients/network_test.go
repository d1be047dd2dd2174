package clients

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// podmanPublishedPort runs a web server on Podman's default network with a
// published port and fetches a page through it from the host.
func podmanPublishedPort(p *podman) {
	t := p.t
	port := localPort(p.t)
	id := p.runDetached("web", []string{"-p", "127.0.0.1:" + strconv.Itoa(port) + ":8080"},
		"sh", "-c", "echo hello-from-$(hostname) > /tmp/index.html; exec httpd -f -p 8080 -h /tmp")
	defer p.rm("web", id)
	addr := strings.TrimSpace(p.must("exec", "web", "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}'"))
	if !strings.HasPrefix(addr, "10.88.") {
		t.Errorf("eth0 address %q, want one on Podman's default network 10.88.0.0/16", addr)
	}
	hostname := strings.TrimSpace(p.must("exec", "web", "hostname"))
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/index.html"
	var body string
	ok := waitFor(10*time.Second, func() bool {
		c := http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK
	})
	if !ok || body != "hello-from-"+hostname+"\n" {
		t.Errorf("GET %s: ok=%v body %q, want hello-from-%s", url, ok, body, hostname)
	}
}

// localPort returns a TCP port on 127.0.0.1 that nothing listens on now.
func localPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
