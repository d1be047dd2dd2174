package clients

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/testutil/cri"
)

// containerdRestoreVersion is the containerd 2.x that still restores a
// checkpoint archive given as a container's image in CreateContainer
// (2.0 to 2.3; 2.4 removed it for KEP-5823's RestorePod).
const containerdRestoreVersion = "v2.3.7"

// TestCRICheckpointRestore checkpoints a counting container with crictl
// checkpoint --export and restores the archive into a new pod by creating
// a container whose image is the archive, as Kubernetes' forensic
// checkpointing does: the count goes on from where it was.
func TestCRICheckpointRestore(t *testing.T) {
	requireSetup(t)
	bin := filepath.Join(cri.Prefix, "containerd-"+containerdRestoreVersion, "bin")
	// 2.3 restores only with this switch on, in the runtime plugin.
	config := func(dir string) string {
		return strings.Replace(criBuilds()[1].Config(dir), "  restrict_oom_score_adj = true\n",
			"  restrict_oom_score_adj = true\n  enable_experimental_restore_via_create = true\n", 1)
	}
	b := cri.Build{Name: containerdRestoreVersion, Daemon: filepath.Join(bin, "containerd"),
		Ctr: filepath.Join(cri.Containerd2Dir, "ctr"), ShimDir: bin, Config: config}
	requireCRI(t, b)
	d := startCRI(t, b, 4)
	for _, rt := range runtimes() {
		t.Run(rt.name, func(t *testing.T) {
			root := filepath.Join(cri.RuntimeRoot(d.dir, rt.name), cri.Namespace)
			t.Cleanup(func() { checkNoState(t, root) })
			criCheckpointRestore(&criRuntime{d: d, t: t, rt: rt, root: root})
		})
	}
}

func criCheckpointRestore(r *criRuntime) {
	t := r.t
	ns := map[string]int{"pid": nsContainer}
	pod := r.runPod("source", "", ns)
	cfg := pod.container("count", []string{"sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.1; done"}, nil)
	id := pod.start(cfg)
	// Far enough that a container started afresh could not pass for the
	// restored one.
	waitFor(10*time.Second, func() bool { return criCount(r, id) >= 30 })
	before := criCount(r, id)
	archive := filepath.Join(t.TempDir(), "checkpoint.tar")
	r.must("checkpoint", "--export="+archive, id)
	pod.remove()

	target := r.runPod("target", "", ns)
	cfg["image"] = map[string]any{"image": archive}
	delete(cfg, "command")
	restored := target.start(cfg)
	first := criCount(r, restored)
	t.Logf("%s: the count was %d before the checkpoint, %d right after the restore", r.rt.name, before, first)
	if first < before {
		t.Errorf("restored container counts %d, below the %d it had before the checkpoint: not restored", first, before)
	}
	if !waitFor(5*time.Second, func() bool { return criCount(r, restored) > first }) {
		t.Errorf("restored container stopped counting at %d", first)
	}
	checkCgroupPlacement(t, r.rt, r.root, restored, target.parent)
}

// criCount reads the counter a container keeps in /tmp/n.
func criCount(r *criRuntime, id string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(r.crictl("exec", "--sync", id, "cat", "/tmp/n").stdout))
	return n
}
