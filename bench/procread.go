package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The reader role runs inside the proc scenarios' containers, so that a
// read goes through the container's mounts and is charged to its cgroup
// (lxcfs and lkc both answer from the reader's cgroup). It times each
// open+read-to-EOF+close itself, so the request's trip over the pipe is
// not counted.
//
// Requests, one per line on stdin, each answered by one line on stdout:
//
//	r PATH        one read: "NS BYTES"
//	l PATH MS     reads in a loop for MS ms: "MAX_NS P99_NS COUNT ERRORS"
//
// With arguments "poll INTERVAL PATH..." it reads every PATH every
// INTERVAL forever instead (the load of a `top` in a container).
func readerMain(args []string) error {
	if len(args) > 0 && args[0] == "poll" {
		return pollMain(args[1:])
	}
	in := bufio.NewScanner(os.Stdin)
	buf := make([]byte, 64<<10)
	for in.Scan() {
		f := strings.Fields(in.Text())
		var reply string
		switch {
		case len(f) == 2 && f[0] == "r":
			d, n, err := timedRead(f[1], buf)
			if err != nil {
				reply = "error " + strings.ReplaceAll(err.Error(), "\n", " ")
			} else {
				reply = fmt.Sprintf("%d %d", d.Nanoseconds(), n)
			}
		case len(f) == 3 && f[0] == "l":
			ms, err := strconv.Atoi(f[2])
			if err != nil {
				return fmt.Errorf("request %q: %w", in.Text(), err)
			}
			reply = loopRead(f[1], time.Duration(ms)*time.Millisecond, buf)
		default:
			return fmt.Errorf("bad request %q", in.Text())
		}
		if _, err := fmt.Println(reply); err != nil {
			return err
		}
	}
	return in.Err()
}

// timedRead opens path, reads it to EOF and closes it, as cat does.
func timedRead(path string, buf []byte) (time.Duration, int, error) {
	start := time.Now()
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("open %s: %w", path, err)
	}
	total := 0
	for {
		n, err := syscall.Read(fd, buf)
		if err != nil {
			syscall.Close(fd)
			return 0, total, fmt.Errorf("read %s: %w", path, err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	syscall.Close(fd)
	return time.Since(start), total, nil
}

// loopRead reads path back to back for span and summarizes the latencies.
func loopRead(path string, span time.Duration, buf []byte) string {
	var lat []time.Duration
	errs := 0
	for end := time.Now().Add(span); time.Now().Before(end); {
		start := time.Now()
		if _, _, err := timedRead(path, buf); err != nil {
			errs++
		}
		lat = append(lat, time.Since(start)) // a failed read counts too
	}
	slices.Sort(lat)
	p99 := lat[min(len(lat)-1, len(lat)*99/100)]
	return fmt.Sprintf("%d %d %d %d", lat[len(lat)-1].Nanoseconds(), p99.Nanoseconds(), len(lat), errs)
}

func pollMain(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: poll INTERVAL PATH...")
	}
	interval, err := time.ParseDuration(args[0])
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for range time.Tick(interval) {
		for _, p := range args[1:] {
			timedRead(p, buf) // a failure shows in the probes' reads
		}
	}
	return nil
}

// readerClient is the benchmark's end of a reader's pipes.
type readerClient struct {
	w   io.WriteCloser
	r   *bufio.Reader
	out io.Closer
}

func (c *readerClient) ask(req string) ([]int64, error) {
	if _, err := fmt.Fprintln(c.w, req); err != nil {
		return nil, fmt.Errorf("reader: sending %q: %w", req, err)
	}
	return c.answer()
}

// answer reads the reply to the last request, as numbers.
func (c *readerClient) answer() ([]int64, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("reader: answer: %w", err)
	}
	if strings.HasPrefix(line, "error ") {
		return nil, fmt.Errorf("reader: %s", strings.TrimSpace(line[len("error "):]))
	}
	var nums []int64
	for _, f := range strings.Fields(line) {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("reader: answer %q: %w", line, err)
		}
		nums = append(nums, n)
	}
	return nums, nil
}

func (c *readerClient) close() {
	c.w.Close()
	c.out.Close()
}
