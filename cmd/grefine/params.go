package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/grefine/grefine/pipeline"
)

func paramsCommand() *cli.Command {
	return &cli.Command{
		Name:  "params",
		Usage: "the request parameters: names in every front end, ranges, defaults (the one parameter table)",
		Description: "Prints pipeline.ParamTable, the one place where a request parameter is described: its JSON\n" +
			"name (REST params, multipart fields, KServe v2 parameters, the batch JSONL \"params\"), its CLI\n" +
			"flag, its grefine_params field in libgrefine, its range and its default. Every front end follows\n" +
			"it (tested). --json prints the rows with each one's JSON Schema (the OpenAPI document's), and the\n" +
			"README's parameter table is the Markdown form.",
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the table as JSON (with each parameter's JSON Schema)"}},
		Action: action(0, runParams),
	}
}

// paramRow is a table row as `grefine params --json` prints it.
type paramRow struct {
	pipeline.Param
	Range   string         `json:"range"`
	Default string         `json:"default"`
	Tiny    string         `json:"default_tiny,omitempty"`
	Schema  map[string]any `json:"schema"`
}

func runParams(c *cli.Context) error {
	if c.Bool("json") {
		rows := paramRows()
		b, err := json.MarshalIndent(rows, "", " ")
		if err != nil {
			return err
		}
		fmt.Fprintln(c.App.Writer, string(b))
		return nil
	}
	return writeParamsMarkdown(c.App.Writer)
}

func paramRows() []paramRow {
	d, dt := pipeline.DefaultParamsFor(false), pipeline.DefaultParamsFor(true)
	var rows []paramRow
	for _, p := range pipeline.ParamTable() {
		r := paramRow{Param: p, Range: p.Range(), Default: p.Default(d), Schema: p.Schema()}
		if t := p.Default(dt); t != r.Default {
			r.Tiny = t
		}
		rows = append(rows, r)
	}
	return rows
}

// writeParamsMarkdown writes the table as the README shows it.
func writeParamsMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| JSON name | CLI flag | C field | type | range | default | used by | meaning |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range paramRows() {
		def := r.Default
		if r.Tiny != "" {
			def += " (tiny set: " + r.Tiny + ")"
		}
		flag := "`--" + r.Flag + "`"
		if r.Negate {
			flag += " (sets false)"
		}
		rng := r.Range
		if rng == "" {
			rng = "true, false"
		}
		used := "assess, refine"
		if r.Refine {
			used = "refine"
		}
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s | %s | %s | %s | %s |\n", r.Name, flag, r.CField, r.Kind, rng, def, used, strings.ReplaceAll(r.Usage, "|", "\\|"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
