package bench

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func metric(name, better string, vals ...float64) Metric {
	m := Metric{Name: name, Unit: "u", Better: better, Values: vals}
	m.Median, m.Min, m.Max = medianMinMax(vals)
	return m
}

func TestCompareVerdicts(t *testing.T) {
	old := &Report{Metrics: []Metric{
		metric("latency_p50", "lower", 100, 102, 98),
		metric("latency_p99", "lower", 200, 210, 190),
		metric("throughput", "higher", 10, 10.2, 9.8),
		metric("queue_mean", "lower", 5, 6, 4),
		metric("compute_mean", "lower", 50, 51, 49),
		metric("only_old", "lower", 1),
	}}
	new := &Report{Metrics: []Metric{
		metric("latency_p50", "lower", 120, 121, 119), // +20%, ranges apart: regression
		metric("latency_p99", "lower", 150, 155, 145), // −25%: improvement
		metric("throughput", "higher", 8, 8.1, 7.9),   // −20% of a higher-is-better: regression
		metric("queue_mean", "lower", 6, 9, 3),        // +20% but the ranges overlap: noise
		metric("compute_mean", "lower", 50.5, 51, 50), // +1%: same
		metric("only_new", "lower", 1),
	}}
	c := Compare(old, new, "old.json", 0)
	assert.Equal(t, 0.05, c.Threshold)
	got := map[string]string{}
	for _, r := range c.Rows {
		got[r.Metric] = r.Verdict
	}
	assert.Equal(t, map[string]string{"latency_p50": "regression", "latency_p99": "improvement", "throughput": "regression",
		"queue_mean": "noise", "compute_mean": "same"}, got)
	assert.Equal(t, 2, c.Regressions)
	assert.Equal(t, 1, c.Improvements)
	assert.InDelta(t, 0.2, c.Rows[0].Change, 1e-12)
	assert.Contains(t, c.Markdown(), "| latency_p50 | u | 100 (98.0–102) | 120 (119–121) | +20.0% | regression |")
}

func TestReadReport(t *testing.T) {
	dir := t.TempDir()
	rep := fixedReport()
	b, err := rep.MarshalIndent()
	require.NoError(t, err)
	p := filepath.Join(dir, "bench.json")
	require.NoError(t, os.WriteFile(p, b, 0o644))
	got, err := ReadReport(p)
	require.NoError(t, err)
	assert.Equal(t, rep.Metrics, got.Metrics)

	for name, body := range map[string]string{"bad.json": "{", "other.json": `{"schema": "x"}`, "future.json": `{"schema": "grefine-bench/9"}`} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
		_, err := ReadReport(filepath.Join(dir, name))
		assert.Error(t, err, name)
	}
	_, err = ReadReport(filepath.Join(dir, "missing.json"))
	assert.Error(t, err)
}
