package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	_ "github.com/grefine/grefine/engine/cpu"  // register the cpu device (the default)
	_ "github.com/grefine/grefine/engine/cuda" // register the cuda and cuda-emu devices (dlopen'd kernels)
	_ "github.com/grefine/grefine/engine/ort"  // register the embedded default backend
	_ "github.com/grefine/grefine/engine/trt"  // register the TensorRT backend (dlopen'd shim)
	"github.com/grefine/grefine/pipeline"
)

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

// Exit statuses besides the pipeline's table (pipeline.Status.ExitCode).
const (
	exitUsage       = 2
	exitInterrupted = 130
)

// maxArgBytes bounds one command-line argument and maxCmdlineBytes all of them. Prompts
// are far shorter (the pipeline refuses prompts over 16 KiB). ONNX Runtime 1.30's
// environment setup reads /proc/self/cmdline and matches it with a std::regex whose
// libstdc++ executor recurses once per character: a command line of about 30 kB
// overflows an 8 MiB thread stack (SIGSEGV inside CreateOrtEnv). So long command lines
// are refused before any library loads.
const (
	maxArgBytes     = 16 << 10
	maxCmdlineBytes = 20 << 10
)

func main() {
	pipeline.Version = version
	os.Exit(runMain(os.Args, os.Stdout, os.Stderr))
}

// runMain runs the CLI with signal handling: the first SIGINT/SIGTERM cancels the run
// (which writes no output and exits 130); a second signal exits 130 at once after
// removing the staging directories. A one-shot command that has not returned a second
// after the first signal is ended the same way (CPU-bound work that does not check the
// context). `serve` is not: it drains (--drain-timeout for the requests in flight, then
// cancels them and waits for their answers) and exits 0.
func runMain(args []string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan int, 1)
	go func() { done <- runApp(ctx, args, stdout, stderr) }()
	grace := time.Second
	if commandOf(args) == "serve" {
		grace = 0 // serve's drain is bounded by --drain-timeout and its own grace
	}
	var deadline <-chan time.Time
	signalled := false
	for {
		select {
		case code := <-done:
			return code
		case s := <-sigs:
			if signalled { // second signal
				cleanupStaging()
				fmt.Fprintln(stderr, "grefine: interrupted")
				return exitInterrupted
			}
			signalled = true
			cancel(fmt.Errorf("%w: %v", errInterrupted, s))
			if grace > 0 {
				deadline = time.After(grace)
			}
		case <-deadline:
			cleanupStaging()
			fmt.Fprintln(stderr, "grefine: interrupted")
			return exitInterrupted
		}
	}
}

// commandOf is the name of the command args run ("" when none), global flags skipped.
func commandOf(args []string) string {
	app := newApp(io.Discard, io.Discard)
	if i := commandIndex(app, args); i < len(args) {
		return args[i]
	}
	return ""
}

var errInterrupted = errors.New("interrupted")

// runApp runs the app and maps its error onto the exit status and one stderr line.
func runApp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	total := 0
	for i, a := range args {
		total += len(a) + 1
		if len(a) > maxArgBytes {
			fmt.Fprintf(stderr, "grefine: argument %d is %d bytes long, over the %d-byte limit (pass long prompts through --batch FILE)\n", i, len(a), maxArgBytes)
			return exitUsage
		}
	}
	if total > maxCmdlineBytes {
		fmt.Fprintf(stderr, "grefine: the command line is %d bytes long, over the %d-byte limit (pass long prompts through --batch FILE)\n", total, maxCmdlineBytes)
		return exitUsage
	}
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, hoistGlobalFlags(app, args))
	if err == nil {
		return 0
	}
	code := exitCode(err)
	msg := err.Error()
	var ae actionError
	if code == exitUsage && !errors.As(err, &ae) {
		msg += "\n" + usageHint(args)
	}
	fmt.Fprintln(stderr, "grefine: "+msg)
	return code
}

// usageHint points at the help of the command the arguments name.
func usageHint(args []string) string {
	for _, a := range args[1:] {
		if !strings.HasPrefix(a, "-") {
			for _, c := range commands() {
				if c.Name == a {
					return fmt.Sprintf("Try 'grefine %s --help'.", a)
				}
			}
			break
		}
	}
	return "Try 'grefine --help'."
}

// exitCode: 2 for usage errors (flags, arguments, bad parameters), 130 for interruption,
// else the pipeline's table (README, Exit status).
func exitCode(err error) int {
	var ue usageError
	var ae actionError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	case !errors.As(err, &ae):
		// urfave/cli's own errors (unknown flag, missing required flag, bad value).
		return exitUsage
	}
	return pipeline.StatusOf(ae.err).ExitCode()
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// actionError marks an error returned by a command's action (not by flag parsing).
type actionError struct{ err error }

func (e actionError) Error() string { return e.err.Error() }
func (e actionError) Unwrap() error { return e.err }

// action wraps a command action so its errors are told apart from urfave/cli's parse
// errors, and refuses stray positional arguments (an unquoted prompt).
func action(nargs int, f cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		if nargs >= 0 && c.NArg() > nargs {
			extra := c.Args().Slice()[nargs:]
			q := make([]string, len(extra))
			for i, a := range extra {
				q[i] = fmt.Sprintf("%q", a)
			}
			return usagef("unexpected argument(s) %s: quote values with spaces (--prompt \"a red cat\")", strings.Join(q, " "))
		}
		err := f(c)
		if err == nil {
			return nil
		}
		var ue usageError
		if errors.As(err, &ue) {
			return err
		}
		if cause := context.Cause(c.Context); cause != nil && errors.Is(cause, errInterrupted) {
			return cause
		}
		return actionError{err}
	}
}

// globalFlags are accepted before or after the command name.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "models", Usage: "model set directory (holds models.json); required by assess, refine, serve, bench", EnvVars: []string{"GREFINE_MODELS"}},
		&cli.StringFlag{Name: "backend", Usage: "inference backend: ort (ONNX Runtime) or trt (TensorRT plans, with --plans)", Value: "ort", EnvVars: []string{"GREFINE_BACKEND"}},
		&cli.StringFlag{Name: "plans", Usage: "TensorRT plan repository (from `grefine plans build`) for --backend trt", EnvVars: []string{"GREFINE_PLANS"}},
		&cli.StringFlag{Name: "device", Usage: "where a request's tensors live and the non-network operations run: cpu (pure Go), cuda (libgrefine_cuda.so kernels) or cuda-emu (the GPU emulator)", Value: "cpu", EnvVars: []string{"GREFINE_DEVICE"}},
		&cli.StringFlag{Name: "ort-lib", Usage: "ONNX Runtime shared library (default: $ONNXRUNTIME_SHARED_LIBRARY_PATH, then beside the binary: .deps/ort/ or ../.deps/ort/, then the system loader)"},
		&cli.StringFlag{Name: "trt-lib", Usage: "libgrefine_trt.so, or build/libgrefine_trt_emu.so, the emulator (default: $GRF_TRT_LIB, then beside the binary or ../build/, then the system loader)"},
		&cli.StringFlag{Name: "hash-cache", Usage: "file remembering verified model files (size+mtime) so big sets are hashed once; '' disables", Value: defaultHashCache(), EnvVars: []string{"GREFINE_HASH_CACHE"}},
		&cli.IntFlag{Name: "threads", Usage: fmt.Sprintf("intra-op threads per engine (0: backend default; at most %d)", pipeline.MaxThreads())},
		&cli.StringFlag{Name: "log-level", Usage: "trace, debug, info, warn, error", Value: "info", EnvVars: []string{"GREFINE_LOG_LEVEL"}},
		&cli.StringFlag{Name: "log-format", Usage: "console or json", Value: "console", EnvVars: []string{"GREFINE_LOG_FORMAT"}},
	}
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:    "grefine",
		Usage:   "G-Refine: find where an AI-generated image is poor or misses its prompt, and repair just there",
		Version: version,
		Description: "Global flags may come before or after the command name. Exit status: 0 ok, 1 internal error,\n" +
			"2 usage or input error, 69 unavailable (model set, library, GPU), 75 busy, 130 interrupted.",
		Writer: stdout, ErrWriter: stderr,
		Flags: globalFlags(),
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
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("unknown command %q (commands: %s)", c.Args().First(), strings.Join(commandNames(), ", "))
			}
			return usagef("no command given (commands: %s)", strings.Join(commandNames(), ", "))
		},
		Commands:        commands(),
		OnUsageError:    onUsageError,
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {}, // runApp prints and picks the exit code
	}
	var fix func([]*cli.Command)
	fix = func(cs []*cli.Command) {
		for _, c := range cs {
			c.OnUsageError = onUsageError
			fix(c.Subcommands)
		}
	}
	fix(app.Commands)
	return app
}

func onUsageError(_ *cli.Context, err error, _ bool) error { return usagef("%v", err) }

// commands lists the subcommands; each lives in its own file.
func commands() []*cli.Command {
	return []*cli.Command{doctorCommand(), parseCommand(), assessCommand(), refineCommand(), plansCommand(), benchCommand(), serveCommand(), paramsCommand(), tritonRepoCommand()}
}

func commandNames() []string {
	var n []string
	for _, c := range commands() {
		n = append(n, c.Name)
	}
	sort.Strings(n)
	return n
}

// hoistGlobalFlags moves global flags written after the command name in front of it
// ("grefine assess --models DIR ..." becomes "grefine --models DIR assess ..."), so they
// work in either place. It knows which of the command's own flags take a value, so a
// value such as --prompt --models is never mistaken for a flag; "--" ends the scan.
func hoistGlobalFlags(app *cli.App, args []string) []string {
	takes := map[string]bool{} // global flag name -> takes a value
	for _, f := range app.Flags {
		for _, n := range f.Names() {
			takes[n] = !isBool(f)
		}
	}
	i := commandIndex(app, args)
	if i >= len(args) {
		return args
	}
	var cmd *cli.Command
	for _, c := range app.Commands {
		if c.HasName(args[i]) {
			cmd = c
		}
	}
	if cmd == nil {
		return args
	}
	local := map[string]bool{}
	var collect func(*cli.Command)
	collect = func(c *cli.Command) {
		for _, f := range c.Flags {
			for _, n := range f.Names() {
				local[n] = !isBool(f)
			}
		}
		for _, s := range c.Subcommands {
			collect(s)
		}
	}
	collect(cmd)
	head := append([]string{}, args[:i]...)
	var rest []string
	for j := i; j < len(args); j++ {
		a := args[j]
		if a == "--" {
			rest = append(rest, args[j:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			rest = append(rest, a)
			continue
		}
		name, _, hasEq := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if v, ok := local[name]; ok {
			rest = append(rest, a)
			if v && !hasEq && j+1 < len(args) {
				rest = append(rest, args[j+1])
				j++
			}
			continue
		}
		if v, ok := takes[name]; ok {
			head = append(head[:1], append([]string{a}, head[1:]...)...)
			if v && !hasEq && j+1 < len(args) {
				head = append(head[:2], append([]string{args[j+1]}, head[2:]...)...)
				j++
			}
			continue
		}
		rest = append(rest, a)
	}
	return append(head, rest...)
}

// commandIndex is the index of the command in args: the first non-flag argument after
// the global flags (len(args) when there is none).
func commandIndex(app *cli.App, args []string) int {
	takes := map[string]bool{}
	for _, f := range app.Flags {
		for _, n := range f.Names() {
			takes[n] = !isBool(f)
		}
	}
	i := 1
	for i < len(args) {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") {
			break
		}
		name, _, hasEq := strings.Cut(strings.TrimLeft(a, "-"), "=")
		i++
		if takes[name] && !hasEq {
			i++
		}
	}
	return min(i, len(args))
}

func isBool(f cli.Flag) bool {
	_, ok := f.(*cli.BoolFlag)
	return ok
}

// The output directories of the runs in flight, cleaned up on a forced exit.
var (
	stagingMu     sync.Mutex
	liveOuts      = map[*outDir]bool{}
	stagingClosed bool // set by a forced exit: no staging may be (re)created after it
)

// cleanupStaging removes the staging folders of the runs in flight, and the output
// directories they created when nothing was committed into them.
func cleanupStaging() {
	stagingMu.Lock()
	defer stagingMu.Unlock()
	stagingClosed = true
	for o := range liveOuts {
		// Rename first: the run's goroutine may still be writing by path into the folder;
		// after the rename its paths lead nowhere, so the removal cannot race with it.
		if dead := o.staging + ".removed"; os.Rename(o.staging, dead) == nil {
			o.staging = dead
		}
		o.finishLocked(runInterrupted)
	}
}
