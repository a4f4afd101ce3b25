package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/grefine/grefine/monitor"
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/server"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "HTTP server: REST (/v1) and KServe v2 Open Inference Protocol (/v2), metrics, limits, drain",
		Description: "Loads the pipeline once and serves POST /v1/assess and /v1/refine (multipart or JSON),\n" +
			"GET|DELETE /v1/requests/{id}, the KServe v2 endpoints (/v2/health/*, /v2/models/{assess,refine}[/ready|/config|/infer]),\n" +
			"/metrics (Prometheus, Triton's names) and /openapi.json. A request takes its place (--slots running,\n" +
			"--queue waiting; 429 at once beyond) before its image is decoded; decodes share --decode-memory.\n" +
			"Each request's work is bounded before anything is allocated: --max-timesteps, --max-steps,\n" +
			"--max-stage-pixels, --max-pixels, --max-memory (GET /v1/info and /v2/models/{m} list them, and the\n" +
			"parameters with their ranges: grefine params). With --auth-tokens a request belongs to its token.\n" +
			"On SIGTERM or SIGINT it stops taking requests, lets those in flight finish within --drain-timeout\n" +
			"(then cancels them), and exits 0 once all have answered; a second signal exits at once.\n" +
			"The access log is JSON unless --log-format is given. README, Serving, has a curl example per endpoint.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "addr", Usage: "listen address", Value: "127.0.0.1:8080"},
			&cli.IntFlag{Name: "slots", Usage: "requests that run at once", Value: 1},
			&cli.IntFlag{Name: "queue", Usage: "requests that may wait for a slot (0: unbounded); more get 429 with Retry-After", Value: 16},
			&cli.DurationFlag{Name: "timeout", Usage: "per-request deadline (0: none); passed in the queue 429, while running 504", Value: 120 * time.Second},
			&cli.StringFlag{Name: "max-body", Usage: "largest request body (B, KiB, MiB, GiB); larger is 413", Value: "32MiB"},
			&cli.StringFlag{Name: "auth-tokens", Usage: "file of bearer tokens, one a line: required on every endpoint but health, metrics and /openapi.json"},
			&cli.StringFlag{Name: "tls-cert", Usage: "TLS certificate (PEM); with --tls-key serves HTTPS"},
			&cli.StringFlag{Name: "tls-key", Usage: "TLS private key (PEM)"},
			&cli.DurationFlag{Name: "drain-timeout", Usage: "on SIGTERM/SIGINT, how long requests in flight may finish", Value: 30 * time.Second},
			&cli.DurationFlag{Name: "write-timeout", Usage: "bound on each write of a response: a client that stops reading is dropped", Value: server.DefaultWriteTimeout},
			&cli.BoolFlag{Name: "pprof", Usage: "serve /debug/pprof/ (behind the tokens, if any)"},
			&cli.BoolFlag{Name: "assess-only", Usage: "load only the quality indicators (no refine model)"},
		}, limitFlags(true, true)...),
		Action: runServe,
	}
}

func runServe(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("serve takes no arguments (got %q)", c.Args().First())
	}
	maxBody, err := parseSize(c.String("max-body"))
	if err != nil {
		return usagef("--max-body: %v", err)
	}
	log := serveLogger(c)
	cfg := server.Config{Timeout: c.Duration("timeout"), MaxBody: maxBody, TLSCert: c.String("tls-cert"), TLSKey: c.String("tls-key"),
		DrainTimeout: c.Duration("drain-timeout"), WriteTimeout: c.Duration("write-timeout"), Pprof: c.Bool("pprof"), Logger: &log}
	if cfg.Timeout < 0 || cfg.DrainTimeout <= 0 || cfg.WriteTimeout <= 0 {
		return usagef("--timeout must be >= 0, --drain-timeout and --write-timeout > 0")
	}
	if c.Int("slots") < 1 || c.Int("slots") > pipeline.MaxSlots || c.Int("queue") < 0 {
		return usagef("--slots must be in [1, %d] and --queue >= 0", pipeline.MaxSlots)
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	if f := c.String("auth-tokens"); f != "" {
		if cfg.Tokens, err = server.LoadTokens(f); err != nil {
			return usagef("--auth-tokens: %v", err)
		}
	}
	pcfg, _, err := preflight(c, c.Bool("assess-only"))
	if err != nil {
		return err
	}
	pcfg.Slots, pcfg.MaxQueue, pcfg.Logger = c.Int("slots"), c.Int("queue"), &log
	p, err := pipeline.Open(c.Context, pcfg)
	if err != nil {
		return actionError{fmt.Errorf("opening the pipeline: %w", err)}
	}
	defer p.Close()
	cfg.Pipeline = p
	if gpu, err := monitor.Open(nil); err != nil {
		log.Info().Str("reason", err.Error()).Msg("no GPU metrics (nv_gpu_*): NVML is not usable here")
	} else {
		defer gpu.Close()
		cfg.GPU = gpu
	}
	s, err := server.New(cfg)
	if err != nil {
		return usagef("%v", err)
	}
	if err := s.ListenAndServe(c.Context, c.String("addr")); err != nil {
		return actionError{fmt.Errorf("%w: %v", pipeline.ErrUnavailable, err)}
	}
	return nil
}

// serveLogger is the server's log: JSON on stderr at --log-level, unless --log-format
// was given.
func serveLogger(c *cli.Context) zerolog.Logger {
	if c.IsSet("log-format") {
		return *zerolog.Ctx(c.Context)
	}
	lvl, _ := zerolog.ParseLevel(c.String("log-level"))
	return zerolog.New(c.App.ErrWriter).Level(lvl).With().Timestamp().Logger()
}

// parseSize reads "32MiB", "512KiB", "1GiB" or a byte count.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q: want a positive size such as 32MiB, 512KiB or 1048576", s)
	}
	return n * mult, nil
}
