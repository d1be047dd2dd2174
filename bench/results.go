package main

import (
	"fmt"
	"time"
)

// scenarioResult is one scenario's outcome, as reported in text and JSON.
type scenarioResult struct {
	Name        string           `json:"name"`
	Desc        string           `json:"description"`
	CPU         string           `json:"cpu_measures,omitempty"`
	Iterations  int              `json:"iterations"` // measured rounds completed
	Warmup      int              `json:"warmup"`
	Interrupted bool             `json:"interrupted,omitempty"`
	Variants    []*variantResult `json:"variants"`
	Ratios      []ratioResult    `json:"ratios"`
}

type variantResult struct {
	Name         string    `json:"name"`
	Desc         string    `json:"description"`
	Info         string    `json:"info,omitempty"`
	Unavailable  string    `json:"unavailable,omitempty"`
	Runs         int       `json:"runs"` // successful measured runs
	Failures     int       `json:"failures"`
	FirstError   string    `json:"first_error,omitempty"` // warm-up included
	CleanupError string    `json:"cleanup_error,omitempty"`
	Notes        string    `json:"notes,omitempty"`
	Wall         *summary  `json:"wall_ms,omitempty"`
	CPU          *summary  `json:"cpu_ms,omitempty"`
	WallSamples  []float64 `json:"wall_samples_ms"`
	CPUSamples   []float64 `json:"cpu_samples_ms"`
	attempts     int       // runs so far, warm-up included
	succeeded    bool      // some run so far succeeded
}

// ratioResult compares the medians of two variants; nil where unknown.
type ratioResult struct {
	Num  string   `json:"numerator"`
	Den  string   `json:"denominator"`
	Wall *float64 `json:"wall"`
	CPU  *float64 `json:"cpu"`
}

// record adds a run's outcome; warm-up runs only contribute their error.
// A variant whose first abandonAfter runs all fail is marked unavailable.
func (vr *variantResult) record(s Sample, err error, measured bool) {
	vr.attempts++
	vr.succeeded = vr.succeeded || err == nil
	if err != nil && vr.FirstError == "" {
		vr.FirstError = err.Error()
	}
	if vr.attempts == abandonAfter && !vr.succeeded {
		vr.Unavailable = fmt.Sprintf("abandoned: its first %d runs failed", abandonAfter)
	}
	switch {
	case !measured:
	case err != nil:
		vr.Failures++
	case len(s.Walls) > 0:
		for _, w := range s.Walls {
			vr.WallSamples = append(vr.WallSamples, ms(w))
		}
		vr.CPUSamples = append(vr.CPUSamples, ms(s.CPU))
	default:
		vr.WallSamples = append(vr.WallSamples, ms(s.Wall))
		vr.CPUSamples = append(vr.CPUSamples, ms(s.CPU))
	}
}

func ms(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

// summarize fills in the per-variant summaries and the requested ratios.
func (res *scenarioResult) summarize(pairs [][2]string) {
	for _, vr := range res.Variants {
		vr.Runs = len(vr.WallSamples)
		vr.Wall = summarize(vr.WallSamples)
		vr.CPU = summarize(vr.CPUSamples)
	}
	for _, p := range pairs {
		num, den := res.variant(p[0]), res.variant(p[1])
		if num == nil || den == nil {
			continue // not selected
		}
		res.Ratios = append(res.Ratios, ratioResult{
			Num:  p[0],
			Den:  p[1],
			Wall: ratio(median(num.Wall), median(den.Wall)),
			CPU:  ratio(median(num.CPU), median(den.CPU)),
		})
	}
}

func (res *scenarioResult) variant(name string) *variantResult {
	for _, vr := range res.Variants {
		if vr.Name == name {
			return vr
		}
	}
	return nil
}

// median returns a pointer to s's median, or nil for an empty summary.
func median(s *summary) *float64 {
	if s == nil {
		return nil
	}
	return &s.P50
}
