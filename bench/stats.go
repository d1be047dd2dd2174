package main

import (
	"math"
	"slices"
)

// summary describes a sample distribution, in milliseconds.
type summary struct {
	P10 float64 `json:"p10"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// summarize returns nil for an empty sample.
func summarize(xs []float64) *summary {
	if len(xs) == 0 {
		return nil
	}
	sorted := slices.Clone(xs)
	slices.Sort(sorted)
	return &summary{
		P10: percentile(sorted, 10),
		P50: percentile(sorted, 50),
		P90: percentile(sorted, 90),
		P99: percentile(sorted, 99),
		Min: sorted[0],
		Max: sorted[len(sorted)-1],
	}
}

// percentile returns the p-th percentile (0..100) of a sorted, non-empty
// sample, interpolating linearly between closest ranks; p=50 is the median.
func percentile(sorted []float64, p float64) float64 {
	pos := p / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (pos-float64(lo))*(sorted[hi]-sorted[lo])
}

// ratio returns num/den, or nil when either is missing or den is zero.
func ratio(num, den *float64) *float64 {
	if num == nil || den == nil || *den == 0 {
		return nil
	}
	r := *num / *den
	return &r
}
