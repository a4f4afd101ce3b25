package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
)

// Comparison is --compare OLD.json: each metric present in both reports, old against
// new, with the noise (min/median/max over each side's repeats).
type Comparison struct {
	Old       string       `json:"old"`
	Threshold float64      `json:"threshold"` // relative change below which a metric is "same"
	Rows      []CompareRow `json:"rows"`
	// Regressions and Improvements count the rows with those verdicts.
	Regressions  int `json:"regressions"`
	Improvements int `json:"improvements"`
}

// CompareRow compares one metric.
type CompareRow struct {
	Metric string  `json:"metric"`
	Unit   string  `json:"unit"`
	Better string  `json:"better"`
	Old    Metric  `json:"old"`
	New    Metric  `json:"new"`
	Change float64 `json:"change"` // new median / old median − 1
	// Verdict: "regression" or "improvement" (the change exceeds the threshold in that
	// direction and the two min–max ranges do not overlap), "noise" (it exceeds the
	// threshold but the ranges overlap), "same" (below the threshold).
	Verdict string `json:"verdict"`
}

// ReadReport reads a bench.json.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("compare: %s: %v", path, err)
	}
	if !strings.HasPrefix(r.Schema, "grefine-bench/") {
		return nil, fmt.Errorf("compare: %s: not a grefine bench report (schema %q)", path, r.Schema)
	}
	if r.Schema != SchemaVersion {
		return nil, fmt.Errorf("compare: %s: schema %s, this grefine reads %s", path, r.Schema, SchemaVersion)
	}
	return &r, nil
}

// Compare weighs new's metrics against old's. threshold <= 0 means 0.05.
func Compare(old, new *Report, oldName string, threshold float64) *Comparison {
	if threshold <= 0 {
		threshold = 0.05
	}
	c := &Comparison{Old: oldName, Threshold: threshold}
	olds := map[string]Metric{}
	for _, m := range old.Metrics {
		olds[m.Name] = m
	}
	for _, nm := range new.Metrics {
		om, ok := olds[nm.Name]
		if !ok || om.Median == 0 {
			continue
		}
		row := CompareRow{Metric: nm.Name, Unit: nm.Unit, Better: nm.Better, Old: om, New: nm, Change: nm.Median/om.Median - 1}
		worse := row.Change > 0
		if nm.Better == "higher" {
			worse = row.Change < 0
		}
		overlap := nm.Min <= om.Max && om.Min <= nm.Max
		switch {
		case math.Abs(row.Change) < threshold:
			row.Verdict = "same"
		case overlap:
			row.Verdict = "noise"
		case worse:
			row.Verdict = "regression"
			c.Regressions++
		default:
			row.Verdict = "improvement"
			c.Improvements++
		}
		c.Rows = append(c.Rows, row)
	}
	return c
}

// Markdown is the comparison as a table.
func (c *Comparison) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Compared with %s\n\n", c.Old)
	fmt.Fprintf(&b, "%d regression(s), %d improvement(s); threshold %.0f%%, noise = min–max over repeats.\n\n", c.Regressions, c.Improvements, 100*c.Threshold)
	b.WriteString("| metric | unit | old median (min–max) | new median (min–max) | change | verdict |\n|---|---|---|---|---|---|\n")
	for _, r := range c.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s (%s–%s) | %s (%s–%s) | %+.1f%% | %s |\n", r.Metric, r.Unit,
			num(r.Old.Median), num(r.Old.Min), num(r.Old.Max), num(r.New.Median), num(r.New.Min), num(r.New.Max), 100*r.Change, r.Verdict)
	}
	return b.String()
}
