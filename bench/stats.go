package bench

import (
	"math"
	"slices"
)

// Summary describes a sample of values (milliseconds for latencies): count, mean, min,
// max and the percentiles p50, p90, p95, p99 and p99.9, by linear interpolation between
// order statistics (Percentile).
type Summary struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	Min  float64 `json:"min"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// Summarize computes the Summary of xs (which it does not modify). An empty sample
// gives the zero Summary.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	sum := 0.0
	for _, v := range s {
		sum += v
	}
	return Summary{N: len(s), Mean: sum / float64(len(s)), Min: s[0], Max: s[len(s)-1],
		P50: percentileSorted(s, 50), P90: percentileSorted(s, 90), P95: percentileSorted(s, 95),
		P99: percentileSorted(s, 99), P999: percentileSorted(s, 99.9)}
}

// Percentile is the p-th percentile (0 <= p <= 100) of xs by linear interpolation
// between the closest ranks: with the values sorted, rank h = (n−1)·p/100 and the result
// x[⌊h⌋] + (h−⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]). This is numpy's default ("linear", Hyndman and
// Fan's type 7). NaN for an empty sample or p outside [0, 100].
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 || !(p >= 0 && p <= 100) {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return percentileSorted(s, p)
}

func percentileSorted(s []float64, p float64) float64 {
	h := float64(len(s)-1) * p / 100
	lo := int(math.Floor(h))
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[lo] + (h-float64(lo))*(s[lo+1]-s[lo])
}

// TailSamples is how many samples lie above the p-th percentile: the number of values a
// p99 rests on (at 100 samples the p99 is set by the largest one or two).
func TailSamples(n int, p float64) int { return int(math.Floor(float64(n) * (100 - p) / 100)) }

// medianMinMax returns the median, min and max of xs (NaN for none): the noise of a
// metric over repeats.
func medianMinMax(xs []float64) (med, lo, hi float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return percentileSorted(s, 50), s[0], s[len(s)-1]
}
