package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/checkpoint"
)

// holdScript makes dd hold size bytes of random data in its own anonymous
// memory: cat streams /blob through a pipe into one dd block, then dd
// blocks writing to a reader that waits for /go and checksums what it gets.
// No file stays open, so nothing but memory carries the data.
func holdScript(size int) string {
	n := strconv.Itoa(size)
	return `head -c ` + n + ` /dev/urandom > /blob && md5sum < /blob > /sum0 && ` +
		`cat /blob | dd bs=` + n + ` count=1 iflag=fullblock 2>/dev/null | ` +
		`(while [ ! -e /go ]; do sleep 0.1; done; md5sum > /sum1)`
}

// waitHolding waits until a process named dd in container id has read
// size bytes, then removes the blob so only memory holds the data.
func (e *env) waitHolding(id, root string, size int) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, pid := range processesIn(id) {
			comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
			io, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
			if strings.TrimSpace(string(comm)) == "dd" && rchar(io) >= int64(size) {
				if err := os.Remove(filepath.Join(root, "blob")); err != nil {
					e.t.Fatal(err)
				}
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("dd in %s never read %d bytes", id, size)
}

func rchar(io []byte) int64 {
	for _, line := range strings.Split(string(io), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// release lets the reader checksum the held data and compares it with the
// checksum taken before the checkpoint.
func releaseAndCompare(t *testing.T, root string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := os.ReadFile(filepath.Join(root, "sum1"))
		if err == nil && len(got) > 0 {
			want, _ := os.ReadFile(filepath.Join(root, "sum0"))
			if !bytes.Equal(got, want) || len(want) < 32 {
				t.Fatalf("memory after restore has checksum %q, before %q", got, want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the restored reader never wrote its checksum")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) holder(size int) (string, string, string) {
	e.t.Helper()
	root := e.writableRootfs()
	b := e.bundle([]string{"sh", "-c", holdScript(size)}, func(s *specs.Spec) { s.Root.Path, s.Root.Readonly = root, false })
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", b, id)
	e.waitHolding(id, root, size)
	return id, root, b
}

// A process holding 512 MiB of touched memory comes back with identical
// contents.
func TestCheckpointMemory512(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	const size = 512 << 20
	id, root, bundle := e.holder(size)
	images := filepath.Join(t.TempDir(), "images")
	e.mustLkc("checkpoint", "--image-path", images, id)
	if pages := dirBytes(t, images, "pages-"); pages < size {
		t.Fatalf("images hold %d bytes of pages, want at least %d", pages, size)
	}
	e.mustLkc("restore", "-d", "--bundle", bundle, "--image-path", images, id)
	releaseAndCompare(t, root)
	e.waitStatus(id, "stopped")
	e.mustLkc("delete", id)
}

func dirBytes(t *testing.T, dir, prefix string) int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, ent := range entries {
		if fi, err := ent.Info(); err == nil && strings.HasPrefix(ent.Name(), prefix) {
			n += fi.Size()
		}
	}
	return n
}

// Post-copy: the dump leaves memory on the source, which serves it from a
// page server once it says '\0' on --status-fd; the restore starts CRIU's
// lazy-pages daemon against it and the contents arrive intact.
func TestCheckpointLazyPages(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	const size = 64 << 20
	id, root, bundle := e.holder(size)
	images := filepath.Join(t.TempDir(), "images")
	port := strconv.Itoa(27000 + os.Getpid()%1000)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	dump := exec.Command(lkcBinary, "--root", e.root, "checkpoint", "--lazy-pages", "--page-server", "127.0.0.1:"+port,
		"--status-fd", "3", "--image-path", images, id)
	dump.ExtraFiles = []*os.File{w}
	var dumpErr bytes.Buffer
	dump.Stderr = &dumpErr
	if err := dump.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	done := make(chan error, 1)
	go func() { done <- dump.Wait() }()
	defer func() {
		dump.Process.Kill()
		<-done
	}()
	if why := checkpoint.CanServeLazyPages(); why != nil {
		// Without CAP_SYS_RESOURCE and a large enough fs.pipe-max-size
		// CRIU cannot serve the pages: lkc refuses before dumping, and the
		// source keeps running with its memory intact.
		t.Logf("CRIU cannot serve lazy pages here: %v", why)
		dumpResult := <-done
		done <- dumpResult
		e.checkOneLineFailure(result{stderr: dumpErr.String(), code: 1}, `checkpoint: .*--lazy-pages: not supported on this host: CRIU's page server needs`, nil)
		if dumpResult == nil {
			t.Fatal("the refused lazy checkpoint exited 0")
		}
		if st := e.state(id); st["status"] != "running" {
			t.Fatalf("source is %v after a refused lazy checkpoint", st["status"])
		}
		releaseAndCompare(t, root)
		e.waitStatus(id, "stopped")
		e.mustLkc("delete", id)
		return
	}
	var b [1]byte
	r.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := r.Read(b[:]); n != 1 || b[0] != 0 {
		t.Fatalf("status fd: read %d bytes %v (%v); checkpoint: %s", n, b, err, dumpErr.String())
	}
	if pages := dirBytes(t, images, "pages-"); pages >= size {
		t.Fatalf("a lazy dump wrote %d bytes of pages, all of the memory", pages)
	}
	// The source keeps its record until it has served every page, as a
	// migration source does: the copy gets an id of its own.
	id2 := e.id()
	res := e.lkc("restore", "-d", "--lazy-pages", "--page-server", "127.0.0.1:"+port, "--bundle", bundle, "--image-path", images, id2)
	var dumpResult error
	select {
	case dumpResult = <-done:
		done <- dumpResult
	case <-time.After(120 * time.Second):
		t.Fatal("the lazy checkpoint never finished serving pages")
	}
	if res.code != 0 || dumpResult != nil {
		t.Fatalf("lazy restore: %v; lazy checkpoint: %v: %s", res, dumpResult, dumpErr.String())
	}
	releaseAndCompare(t, root)
	if r := e.lkc("state", id); r.code == 0 {
		t.Fatalf("the source container is still there after the lazy checkpoint: %v", r)
	}
	e.waitStatus(id2, "stopped")
	e.mustLkc("delete", id2)
}

// softDirty reports whether CRIU can track dirty memory on this kernel.
func softDirty(t *testing.T, criu string) bool {
	return exec.Command(criu, "check", "--feature", "mem_dirty_track").Run() == nil
}

// Incremental checkpoints need the kernel's soft-dirty bits: where it has
// them (the v2 VM), a pre-dump and a dump on top of it restore the counter;
// where it has not (this project's usual host), lkc says so in one line.
func TestCheckpointPreDump(t *testing.T) {
	criu := requireCriu(t)
	e := newEnv(t)
	id, root := e.ckptCounter(nil)
	dir := t.TempDir()
	pre := filepath.Join(dir, "pre")
	if !softDirty(t, criu) {
		e.failLkc(`--pre-dump: not supported on this host: the kernel does not track dirty memory \(soft-dirty`,
			"checkpoint", "--pre-dump", "--image-path", pre, id)
		waitCount(t, root, readCount(t, root)+2)
		return
	}
	bundle := bundleOf(e, id)
	e.mustLkc("checkpoint", "--pre-dump", "--image-path", pre, id)
	if st := e.state(id); st["status"] != "running" {
		t.Fatalf("container is %v after a pre-dump", st["status"])
	}
	final := filepath.Join(dir, "final")
	saved := e.checkpointStops(id, root, final, "--parent-path", "../pre")
	e.restoreDetached(id, bundle, root, final, saved)
	e.mustLkc("delete", "-f", id)
}
