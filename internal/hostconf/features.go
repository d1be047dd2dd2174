package hostconf

import "fmt"

// The annotations (config.json, set by any client) that ask for a daemon
// feature; each wins over its host default.
const (
	AnnotationProc      = "org.lkc.proc"
	AnnotationOOMPolicy = "org.lkc.oom-policy"
)

// Features is what a container asks of the daemon. The zero value asks
// nothing: such a container never touches the daemon.
type Features struct {
	Proc      bool   `json:"proc,omitempty"`      // a virtual /proc and sysinfo
	OOMPolicy string `json:"oomPolicy,omitempty"` // a policy other than kernel
}

// Any says whether the container needs the daemon at all.
func (f Features) Any() bool { return f.Proc || f.OOMPolicy != "" }

// Missing names, as its annotation, the first feature f asks for that
// got does not provide ("" when none).
func (f Features) Missing(got Features) string {
	switch {
	case f.Proc && !got.Proc:
		return AnnotationProc + "=virtual"
	case f.OOMPolicy != "" && got.OOMPolicy != f.OOMPolicy:
		return AnnotationOOMPolicy + "=" + f.OOMPolicy
	}
	return ""
}

// Features resolves what a container with these annotations asks of the
// daemon: each annotation, else the host default. An invalid annotation is
// an error naming it.
func (c *Conf) Features(annotations map[string]string) (Features, error) {
	var f Features
	proc := c.ProcDefault
	if v, ok := annotations[AnnotationProc]; ok {
		if v != "off" && v != "virtual" {
			return f, fmt.Errorf("annotation %s=%q: use off or virtual", AnnotationProc, v)
		}
		proc = v
	}
	f.Proc = proc == "virtual"
	policy := c.OOMDefault
	if v, ok := annotations[AnnotationOOMPolicy]; ok {
		if err := ValidPolicy(v); err != nil {
			return f, fmt.Errorf("annotation %s=%w", AnnotationOOMPolicy, err)
		}
		policy = v
	}
	if policy != "kernel" {
		f.OOMPolicy = policy
	}
	return f, nil
}
