package main

import (
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"single", []float64{7}, 50, 7},
		{"odd median", []float64{1, 2, 10}, 50, 2},
		{"even median interpolates", []float64{1, 2, 3, 10}, 50, 2.5},
		{"p0 is min", []float64{1, 2, 3}, 0, 1},
		{"p100 is max", []float64{1, 2, 3}, 100, 3},
		{"p10 of 0..10", []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 10, 1},
		{"p90 interpolates", []float64{0, 10}, 90, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarizeSortsACopy(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	s := summarize(xs)
	if s.P50 != 3 || s.Min != 1 || s.Max != 5 {
		t.Errorf("summarize(%v) = %+v", xs, s)
	}
	if xs[0] != 5 {
		t.Errorf("summarize reordered its input: %v", xs)
	}
	if summarize(nil) != nil {
		t.Error("summarize(nil) != nil")
	}
}

func TestRatio(t *testing.T) {
	two, four, zero := 2.0, 4.0, 0.0
	if r := ratio(&two, &four); r == nil || *r != 0.5 {
		t.Errorf("ratio(2, 4) = %v, want 0.5", r)
	}
	for _, r := range []*float64{ratio(nil, &four), ratio(&two, nil), ratio(&two, &zero)} {
		if r != nil {
			t.Errorf("ratio with a missing or zero operand = %v, want nil", *r)
		}
	}
}

func TestSummarizeRatios(t *testing.T) {
	res := &scenarioResult{Variants: []*variantResult{{Name: "lkc"}, {Name: "crun"}, {Name: "runc", Unavailable: "missing"}}}
	for _, wall := range []time.Duration{4, 6, 5} {
		res.Variants[0].record(Sample{Wall: wall * time.Millisecond, CPU: time.Millisecond}, nil, true)
		res.Variants[1].record(Sample{Wall: 10 * time.Millisecond, CPU: 2 * time.Millisecond}, nil, true)
	}
	res.summarize([][2]string{{"lkc", "crun"}, {"lkc", "runc"}, {"lkc", "absent"}})
	if len(res.Ratios) != 2 {
		t.Fatalf("got %d ratios, want 2 (pairs with an unselected variant are skipped)", len(res.Ratios))
	}
	if r := res.Ratios[0]; *r.Wall != 0.5 || *r.CPU != 0.5 {
		t.Errorf("lkc/crun = wall %v cpu %v, want 0.5 and 0.5", *r.Wall, *r.CPU)
	}
	if r := res.Ratios[1]; r.Wall != nil || r.CPU != nil {
		t.Errorf("lkc/runc without runc data = %+v, want nil ratios", r)
	}
}
