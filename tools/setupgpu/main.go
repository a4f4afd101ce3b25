package main

import (
	_ "embed"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/grefine/grefine/internal/wheel"
)

//go:embed manifest.json
var manifestJSON []byte

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("setupgpu", flag.ContinueOnError)
	fs.SetOutput(stderr)
	wheels := fs.String("wheels", ".cache/wheels", "directory holding the downloaded wheels")
	out := fs.String("out", ".deps/ort-gpu", "directory the libraries are installed into")
	manifest := fs.String("manifest", "", "manifest file (default: the embedded tools/setupgpu/manifest.json)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: setupgpu [-wheels DIR] [-out DIR] need|install|verify")
		return 2
	}
	var m *wheel.Manifest
	var err error
	if *manifest != "" {
		m, err = wheel.Load(*manifest)
	} else {
		m, err = wheel.Parse(manifestJSON)
	}
	if err != nil {
		fmt.Fprintln(stderr, "setupgpu:", err)
		return 1
	}
	switch fs.Arg(0) {
	case "need":
		for _, w := range m.Missing(*wheels, *out) {
			fmt.Fprintln(stdout, w.Requirement())
		}
		return 0
	case "verify":
		bad := 0
		for _, w := range m.Wheels {
			for _, p := range wheel.Verify(w, *out) {
				fmt.Fprintln(stderr, "setupgpu:", p)
				bad++
			}
		}
		if bad > 0 {
			return 1
		}
		return 0
	case "install":
		got, err := m.Install(*wheels, *out)
		var lines []string
		var total int64
		for _, g := range got {
			state := "installed"
			if g.Kept {
				state = "kept"
			}
			total += g.Size
			lines = append(lines, fmt.Sprintf("%-40s %11d  sha256 %s…  %-9s from %s", g.Dest, g.Size, g.SHA256[:12], state, g.Wheel))
		}
		for _, l := range lines {
			fmt.Fprintln(stdout, "setupgpu:", l)
		}
		if err != nil {
			fmt.Fprintln(stderr, "setupgpu:", err)
			return 1
		}
		var reqs []string
		for _, w := range m.Wheels {
			reqs = append(reqs, w.Requirement())
		}
		stamp := "# written by make setup-gpu (tools/setupgpu); wheels: " + strings.Join(reqs, " ") + "\n" + strings.Join(lines, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(*out, "INSTALLED"), []byte(stamp), 0o644); err != nil {
			fmt.Fprintln(stderr, "setupgpu:", err)
			return 1
		}
		fmt.Fprintf(stdout, "setupgpu: %d files, %.0f MiB in %s (%s)\n", len(got), float64(total)/(1<<20), *out, strings.Join(reqs, ", "))
		return 0
	}
	fmt.Fprintf(stderr, "setupgpu: unknown command %q (need, install, verify)\n", fs.Arg(0))
	return 2
}
