package main

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/grefine/grefine/internal/files"
	"github.com/grefine/grefine/internal/wheel"
)

//go:embed manifest.json
var manifestJSON []byte

// Manifest pins one TensorRT redistributable jar.
type Manifest struct {
	TensorRT   string            `json:"tensorrt"`    // version of the libraries ("10.15.1")
	CUDA       string            `json:"cuda"`        // CUDA major version they are built for
	HeadersTag string            `json:"headers_tag"` // NVIDIA/TensorRT tag whose include/ matches
	Maven      string            `json:"maven"`       // group:artifact:version:packaging:classifier
	Jar        wheel.Wheel       `json:"jar"`         // the jar and the members to extract
	Links      map[string]string `json:"links"`       // symlinks to make: path -> target (relative)
}

var coordRE = regexp.MustCompile(`^([A-Za-z0-9_.-]+):([A-Za-z0-9_.-]+):([A-Za-z0-9_.-]+):(jar):([A-Za-z0-9_.-]+)$`)

// parseManifest decodes and validates a manifest; the jar entry goes through wheel.Parse.
func parseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("bad manifest: %w", err)
	}
	wm, err := json.Marshal(wheel.Manifest{Wheels: []wheel.Wheel{m.Jar}})
	if err != nil {
		return nil, err
	}
	if _, err := wheel.Parse(wm); err != nil {
		return nil, err
	}
	if _, err := parseVersion(m.TensorRT); err != nil {
		return nil, fmt.Errorf("bad manifest: tensorrt %q: %w", m.TensorRT, err)
	}
	if m.HeadersTag == "" || m.CUDA == "" {
		return nil, errors.New("bad manifest: headers_tag and cuda are required")
	}
	if _, err := jarPath("", m.Maven, m.Jar.File); err != nil {
		return nil, err
	}
	for p, target := range m.Links {
		if filepath.IsAbs(p) || filepath.Clean(p) != p || strings.HasPrefix(p, "..") || strings.Contains(target, "/") {
			return nil, fmt.Errorf("bad manifest: link %s -> %s must be a relative path to a sibling", p, target)
		}
	}
	return &m, nil
}

// jarPath is where Maven stores the artifact under the local repository m2; the file
// name must agree with the manifest's.
func jarPath(m2, coord, file string) (string, error) {
	g := coordRE.FindStringSubmatch(coord)
	if g == nil {
		return "", fmt.Errorf("bad manifest: maven %q is not group:artifact:version:jar:classifier", coord)
	}
	name := fmt.Sprintf("%s-%s-%s.%s", g[2], g[3], g[5], g[4])
	if name != file {
		return "", fmt.Errorf("bad manifest: maven %s stores %s, the manifest names %s", coord, name, file)
	}
	return filepath.Join(m2, filepath.FromSlash(strings.ReplaceAll(g[1], ".", "/")), g[2], g[3], name), nil
}

type version [3]int

func (v version) String() string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }

func parseVersion(s string) (version, error) {
	var v version
	if n, err := fmt.Sscanf(s, "%d.%d.%d", &v[0], &v[1], &v[2]); err != nil || n != 3 || v.String() != s {
		return v, fmt.Errorf("not major.minor.patch")
	}
	return v, nil
}

var defineRE = regexp.MustCompile(`^\s*#\s*define\s+(\w+)\s+(\w+)`)

// headerVersion reads NV_TENSORRT_MAJOR/MINOR/PATCH from dir/NvInferVersion.h (10.x
// defines them through TRT_*_ENTERPRISE; older headers directly).
func headerVersion(dir string) (version, error) {
	f, err := os.Open(filepath.Join(dir, "NvInferVersion.h"))
	if err != nil {
		return version{}, err
	}
	defer f.Close()
	defs := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if g := defineRE.FindStringSubmatch(sc.Text()); g != nil {
			if _, dup := defs[g[1]]; !dup {
				defs[g[1]] = g[2]
			}
		}
	}
	if err := sc.Err(); err != nil {
		return version{}, err
	}
	var v version
	for i, name := range []string{"NV_TENSORRT_MAJOR", "NV_TENSORRT_MINOR", "NV_TENSORRT_PATCH"} {
		val, ok := defs[name]
		for hops := 0; ok && hops < 4; hops++ { // follow NAME -> OTHER_NAME -> 10
			if next, isName := defs[val]; isName {
				val = next
			} else {
				break
			}
		}
		if !ok {
			return version{}, fmt.Errorf("%s/NvInferVersion.h does not define %s", dir, name)
		}
		if _, err := fmt.Sscanf(val, "%d", &v[i]); err != nil {
			return version{}, fmt.Errorf("%s/NvInferVersion.h: %s is %q, not a number", dir, name, val)
		}
	}
	return v, nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("setuptrt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	m2 := fs.String("m2", "", "Maven local repository (mvn -Dmaven.repo.local)")
	out := fs.String("out", ".deps/trt", "directory the libraries are installed into (a TensorRT_ROOT)")
	manifest := fs.String("manifest", "", "manifest file (default: the embedded tools/setuptrt/manifest.json)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() < 1 {
		fmt.Fprintln(stderr, "usage: setuptrt [-m2 DIR] [-out DIR] need|jar|install|verify|headers DIR|info KEY")
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "setup-trt: "+format+"\n", a...)
		return 1
	}
	b := manifestJSON
	if *manifest != "" {
		var err error
		if b, err = os.ReadFile(*manifest); err != nil {
			return fail("%v", err)
		}
	}
	m, err := parseManifest(b)
	if err != nil {
		return fail("%v", err)
	}
	needM2 := func() bool { return *m2 != "" }
	jar, _ := jarPath(*m2, m.Maven, m.Jar.File)
	switch cmd := fs.Arg(0); cmd {
	case "info":
		if fs.NArg() != 2 {
			return fail("info needs one key: tensorrt, tag, maven, cuda")
		}
		val := map[string]string{"tensorrt": m.TensorRT, "tag": m.HeadersTag, "maven": m.Maven, "cuda": m.CUDA}[fs.Arg(1)]
		if val == "" {
			return fail("info: unknown key %q (tensorrt, tag, maven, cuda)", fs.Arg(1))
		}
		fmt.Fprintln(stdout, val)
		return 0
	case "jar":
		if !needM2() {
			return fail("jar needs -m2 DIR")
		}
		fmt.Fprintln(stdout, jar)
		return 0
	case "need":
		if !needM2() {
			return fail("need needs -m2 DIR")
		}
		if len(wheel.Verify(m.Jar, *out)) == 0 {
			return 0
		}
		if sum, _, err := files.Hash(jar); err == nil && sum == m.Jar.SHA256 {
			return 0
		}
		fmt.Fprintln(stdout, m.Maven)
		return 0
	case "verify":
		bad := wheel.Verify(m.Jar, *out)
		for _, p := range bad {
			fmt.Fprintln(stderr, "setup-trt:", p)
		}
		if len(bad) > 0 {
			return 1
		}
		return 0
	case "headers":
		if fs.NArg() != 2 {
			return fail("headers needs the include directory")
		}
		dir := fs.Arg(1)
		got, err := headerVersion(dir)
		if err != nil {
			return fail("no TensorRT headers: %v (set TRT_INCLUDE to an include/ of TensorRT %s, or TRT_SRC to a NVIDIA/TensorRT checkout with tag %s)",
				err, m.TensorRT, m.HeadersTag)
		}
		want, _ := parseVersion(m.TensorRT)
		if got != want {
			return fail("header/library version mismatch: %s holds TensorRT %s headers, the libraries are %s (use the include/ of tag %s)",
				dir, got, want, m.HeadersTag)
		}
		fmt.Fprintln(stdout, got)
		return 0
	case "install":
		if !needM2() {
			return fail("install needs -m2 DIR")
		}
		got, err := wheel.Extract(m.Jar, jar, *out)
		var lines []string
		for _, g := range got {
			state := "installed"
			if g.Kept {
				state = "kept"
			}
			lines = append(lines, fmt.Sprintf("%-48s %11d  sha256 %s…  %s", g.Dest, g.Size, g.SHA256[:12], state))
		}
		for _, l := range lines {
			fmt.Fprintln(stdout, "setup-trt:", l)
		}
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return fail("the jar is not in the Maven cache: %s (run mvn, see tools/setup-trt.sh)", jar)
			}
			if errors.Is(err, wheel.ErrHash) {
				return fail("%v (delete %s from the Maven cache and run again)", oneLine(err), jar)
			}
			return fail("%v", oneLine(err))
		}
		for p, target := range m.Links {
			if err := symlink(target, filepath.Join(*out, p)); err != nil {
				return fail("%v", err)
			}
		}
		stamp := fmt.Sprintf("# written by make setup-trt (tools/setuptrt): %s, TensorRT %s for CUDA %s\n%s\n",
			m.Maven, m.TensorRT, m.CUDA, strings.Join(lines, "\n"))
		if err := os.WriteFile(filepath.Join(*out, "INSTALLED"), []byte(stamp), 0o644); err != nil {
			return fail("%v", err)
		}
		return 0
	default:
		fmt.Fprintf(stderr, "setup-trt: unknown command %q (need, jar, install, verify, headers, info)\n", cmd)
		return 2
	}
}

// symlink makes path point at target, replacing whatever is there, through a rename.
func symlink(target, path string) error {
	if cur, err := os.Readlink(path); err == nil && cur == target {
		return nil
	}
	tmp := path + ".tmp-link"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }
