package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// rateNet is the net-rate scenario's network: the plugins of the others,
// IPv4 only.
var rateNet = benchNetwork{"lkc-bench-rate", "lkcbench4", "10.78.4.0/24", ""}

const (
	rateLimit    = "egress=10mbit" // the limited containers' annotation
	echoSize     = 64
	echoInterval = 20 * time.Millisecond
	idleEchoes   = 20
	bulkSettle   = 500 * time.Millisecond // the bucket drained and the queue full
	bulkWindow   = time.Second            // throughput and round trips counted
	echoTimeout  = 5 * time.Second
)

// netRateScenario measures what the bandwidth plugin's limit does to a
// container's traffic: the round trip of a 64-byte TCP echo from the host
// to a container with and without an egress limit, idle and while the
// container sends a bulk stream to the host (the limit's token bucket
// queues the echo's reply behind it), and the bulk stream's throughput.
func netRateScenario() Scenario {
	return Scenario{
		Name: "net-rate",
		Desc: "TCP echo round trip (64 bytes, host to container) with and without " + rateLimit + ", idle and beside a bulk stream out of the container; the stream's throughput in the notes",
		Ratios: [][2]string{{"rtt-limited", "rtt-unlimited"},
			{"rtt-limited-loaded", "rtt-unlimited-loaded"}},
		Variants: func(env *Env) []Variant {
			return []Variant{
				netRateVariant(env, "rtt-unlimited", "", false),
				netRateVariant(env, "rtt-limited", rateLimit, false),
				netRateVariant(env, "rtt-unlimited-loaded", "", true),
				netRateVariant(env, "rtt-limited-loaded", rateLimit, true),
			}
		},
	}
}

// netRatePeer is one variant's container and its open echo connection.
type netRatePeer struct {
	env     *Env
	rt      *ociRuntime
	id      string
	addr    string
	echo    net.Conn
	mbits   []float64 // the bulk stream's throughput, one per run
	started bool
}

func netRateVariant(env *Env, name, rate string, loaded bool) Variant {
	p := &netRatePeer{env: env, rt: &ociRuntime{name: name, bin: env.LKC, root: filepath.Join(env.Dir, "state-"+name)},
		id: env.IDPrefix + "-" + name}
	desc := "no limit"
	if rate != "" {
		desc = rate
	}
	if loaded {
		desc += ", beside a bulk stream out of the container"
	}
	v := Variant{
		Name:    name,
		Desc:    "echo round trip, " + desc,
		Prepare: func() (string, error) { return p.start(rate) },
		Run: func(ctx context.Context, _ int) (Sample, error) {
			if loaded {
				return p.loadedRoundTrips(ctx)
			}
			return p.roundTrips(ctx, idleEchoes)
		},
		Cleanup: p.stop,
	}
	if loaded {
		v.Notes = p.notes
	}
	return v
}

// start runs the variant's container on rateNet with the given rate
// annotation and connects to its echo.
func (p *netRatePeer) start(rate string) (string, error) {
	if _, err := p.rt.prepare(); err != nil {
		return "", err
	}
	if err := installReader(p.env); err != nil {
		return "", err
	}
	if err := writeLKCNet(p.env, rateNet); err != nil {
		return "", err
	}
	ann := map[string]string{"org.lkc.network": rateNet.name}
	if rate != "" {
		ann["org.lkc.net-rate"] = rate
	}
	bundle := filepath.Join(p.env.Dir, "bundle-"+p.rt.name)
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		return "", err
	}
	err := editConfig(filepath.Join(p.env.Bundle, "config.json"), filepath.Join(bundle, "config.json"),
		func(spec map[string]any) error {
			if err := setNetBundle(spec, p.env.Rootfs, ann); err != nil {
				return err
			}
			proc := spec["process"].(map[string]any)
			proc["args"] = []string{readerPath}
			env, _ := proc["env"].([]any)
			proc["env"] = append(env, roleEnv+"="+roleNetPeer)
			return nil
		})
	if err != nil {
		return "", err
	}
	if err := p.run(bundle); err != nil {
		p.stop() // a variant whose Prepare fails gets no Cleanup
		return "", err
	}
	return fmt.Sprintf("container %s at %s, annotations %v", p.id, p.addr, ann), nil
}

// run starts the container, with its stdio on /dev/null and lkc's stderr
// in a file (a pipe would stay open in the container), finds its address
// and connects to its echo.
func (p *netRatePeer) run(bundle string) error {
	ctx, cancel := context.WithTimeout(context.Background(), p.env.Timeout)
	defer cancel()
	logPath := filepath.Join(p.env.Dir, "run-d-"+p.id+".log")
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := p.rt.command(ctx, "run", "-d", "--bundle", bundle, p.id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.env.runner.null, p.env.runner.null, log
	p.started = true
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(logPath)
		return fmt.Errorf("lkc run -d %s: %w: %s", p.id, err, strings.TrimSpace(string(out)))
	}
	if p.addr, err = p.address(ctx); err != nil {
		return err
	}
	p.echo, err = dialRetrying(ctx, p.addr+":"+netEchoPort)
	return err
}

var inetAddr = regexp.MustCompile(`inet (\d+\.\d+\.\d+\.\d+)/`)

// address is the container's IPv4 address on eth0.
func (p *netRatePeer) address(ctx context.Context) (string, error) {
	out, err := p.rt.command(ctx, "exec", p.id, "ip", "-o", "-4", "addr", "show", "eth0").Output()
	m := inetAddr.FindSubmatch(out)
	if err != nil || m == nil {
		return "", fmt.Errorf("address of %s: %v: %q", p.id, err, out)
	}
	return string(m[1]), nil
}

// dialRetrying connects to addr, retrying until the server listens.
func dialRetrying(ctx context.Context, addr string) (net.Conn, error) {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connecting to %s: %w", addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// roundTrips times n echoes, echoInterval apart.
func (p *netRatePeer) roundTrips(ctx context.Context, n int) (Sample, error) {
	var s Sample
	msg, back := make([]byte, echoSize), make([]byte, echoSize)
	for i := 0; i < n && ctx.Err() == nil; i++ {
		p.echo.SetDeadline(time.Now().Add(echoTimeout))
		start := time.Now()
		if _, err := p.echo.Write(msg); err != nil {
			return s, fmt.Errorf("echo to %s: %w", p.addr, err)
		}
		if _, err := io.ReadFull(p.echo, back); err != nil {
			return s, fmt.Errorf("echo from %s: %w", p.addr, err)
		}
		s.Walls = append(s.Walls, time.Since(start))
		time.Sleep(echoInterval)
	}
	return s, nil
}

// loadedRoundTrips reads the container's bulk stream, and once it has
// settled times echoes for bulkWindow and counts the stream's bytes.
func (p *netRatePeer) loadedRoundTrips(ctx context.Context) (Sample, error) {
	bulk, err := net.DialTimeout("tcp", p.addr+":"+netBulkPort, 5*time.Second)
	if err != nil {
		return Sample{}, fmt.Errorf("bulk stream from %s: %w", p.addr, err)
	}
	defer bulk.Close()
	var got atomic.Int64
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := bulk.Read(buf)
			got.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	time.Sleep(bulkSettle)
	before, start := got.Load(), time.Now()
	s, err := p.roundTrips(ctx, int(bulkWindow/echoInterval))
	bits := float64(got.Load()-before) * 8
	p.mbits = append(p.mbits, bits/time.Since(start).Seconds()/1e6)
	return s, err
}

func (p *netRatePeer) notes() string {
	if len(p.mbits) == 0 {
		return ""
	}
	m := slices.Clone(p.mbits)
	slices.Sort(m)
	return fmt.Sprintf("bulk stream out of the container (TCP payload): median %.2f Mbit/s, min %.2f, max %.2f over %d runs",
		m[len(m)/2], m[0], m[len(m)-1], len(m))
}

// stop deletes the container, and the network's bridge once no container
// is on it.
func (p *netRatePeer) stop() error {
	if p.echo != nil {
		p.echo.Close()
	}
	var err error
	if p.started {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, derr := p.rt.command(ctx, "delete", "-f", p.id).CombinedOutput(); derr != nil && p.rt.hasState(p.id) {
			err = fmt.Errorf("lkc delete -f %s: %w: %s", p.id, derr, strings.TrimSpace(string(out)))
		}
	}
	if out, _ := exec.Command("ip", "-o", "link", "show", "master", rateNet.bridge).Output(); len(out) == 0 {
		rateNet.removeBridge()
	}
	return err
}
