package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/grefine/grefine/engine/modelset"
	_ "github.com/grefine/grefine/engine/ort" // register the embedded default backend
	_ "github.com/grefine/grefine/engine/trt" // register the TensorRT backend (dlopen'd shim)
)

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newApp(os.Stdout, os.Stderr).RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "grefine:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode: 2 for usage errors, 130 for interruption, 1 otherwise.
func exitCode(err error) int {
	var ue usageError
	switch {
	case errors.As(err, &ue):
		return 2
	case errors.Is(err, context.Canceled):
		return 130
	}
	return 1
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// defaultModels: $GRF_MODELS, else the tiny set in the source tree when run from it.
func defaultModels() string {
	if p := os.Getenv("GRF_MODELS"); p != "" {
		return p
	}
	for _, c := range []string{"testdata/models/tiny", "../testdata/models/tiny", "../../testdata/models/tiny"} {
		if _, err := os.Stat(filepath.Join(c, "models.json")); err == nil {
			return c
		}
	}
	return "models"
}

// defaultHashCache is <user cache dir>/grefine/modelset-hashes.json, or "" when there is
// no user cache directory.
func defaultHashCache() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "grefine", "modelset-hashes.json")
}

// loadModels loads and verifies the --models set (hashes through --hash-cache).
func loadModels(c *cli.Context) (*modelset.Set, error) {
	return modelset.Load(c.String("models"), modelset.Options{HashCache: c.String("hash-cache")})
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:    "grefine",
		Usage:   "G-Refine: find where an AI-generated image is poor or misses its prompt, and repair just there",
		Version: version,
		Writer:  stdout, ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "models", Usage: "model set directory (holds models.json)", Value: defaultModels(), EnvVars: []string{"GRF_MODELS"}},
			&cli.StringFlag{Name: "backend", Usage: "inference backend of assess/refine: ort (ONNX Runtime, CPU; trt is not wired into the pipelines yet, see plans build)", Value: "ort", EnvVars: []string{"GRF_BACKEND"}},
			&cli.StringFlag{Name: "device", Usage: "where the quality-map fusion runs: cpu (pure Go) or cuda (libgrefine_cuda.so kernels)", Value: "cpu", EnvVars: []string{"GRF_DEVICE"}},
			&cli.StringFlag{Name: "ort-lib", Usage: "ONNX Runtime shared library (default: $ONNXRUNTIME_SHARED_LIBRARY_PATH, then .deps/ort/)"},
			&cli.StringFlag{Name: "hash-cache", Usage: "file remembering verified model files (size+mtime) so big sets are hashed once; '' disables", Value: defaultHashCache(), EnvVars: []string{"GRF_HASH_CACHE"}},
			&cli.IntFlag{Name: "threads", Usage: "intra-op threads per engine (0: backend default)"},
			&cli.StringFlag{Name: "log-level", Usage: "trace, debug, info, warn, error", Value: "info", EnvVars: []string{"GRF_LOG_LEVEL"}},
			&cli.StringFlag{Name: "log-format", Usage: "console or json", Value: "console", EnvVars: []string{"GRF_LOG_FORMAT"}},
		},
		Before: func(c *cli.Context) error {
			lvl, err := zerolog.ParseLevel(c.String("log-level"))
			if err != nil || c.String("log-level") == "" {
				return usagef("bad --log-level %q (trace, debug, info, warn, error)", c.String("log-level"))
			}
			var w io.Writer
			switch c.String("log-format") {
			case "json":
				w = stderr
			case "console":
				w = zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.TimeOnly}
			default:
				return usagef("bad --log-format %q (console or json)", c.String("log-format"))
			}
			log := zerolog.New(w).Level(lvl).With().Timestamp().Logger()
			c.Context = log.WithContext(c.Context)
			return nil
		},
		Commands:       commands(),
		ExitErrHandler: func(*cli.Context, error) {}, // main prints and picks the exit code
	}
}

// commands lists the subcommands; each lives in its own file.
func commands() []*cli.Command {
	return []*cli.Command{doctorCommand(), parseCommand(), assessCommand(), refineCommand(), plansCommand(), benchCommand()}
}
