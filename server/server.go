package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/grefine/grefine/pipeline"
)

// Config is what New needs. Only Pipeline is required.
type Config struct {
	// Pipeline serves the requests; the server does not close it.
	Pipeline *pipeline.Pipeline
	// Timeout is each inference request's deadline (0: none). A deadline passed in the
	// queue is 429, one passed while running is 504.
	Timeout time.Duration
	// MaxBody bounds a request body in bytes (default DefaultMaxBody); larger is 413.
	MaxBody int64
	// Tokens, if not empty, are the bearer tokens accepted on every endpoint except
	// health, metrics and the OpenAPI document (LoadTokens reads a tokens file).
	Tokens []string
	// TLSCert and TLSKey, if both set, make Serve speak HTTPS.
	TLSCert, TLSKey string
	// WriteTimeout bounds each write of a response (default DefaultWriteTimeout;
	// negative: none): a client that stops reading is dropped after it.
	WriteTimeout time.Duration
	// DrainTimeout bounds the graceful shutdown: requests still running after it are
	// cancelled with a clear error (default 30 s).
	DrainTimeout time.Duration
	// Pprof mounts net/http/pprof at /debug/pprof/.
	Pprof bool
	// GPU, if set, exports NVML gauges (a *monitor.Monitor).
	GPU Sampler
	// Logger receives the JSON access log and the server's messages (nil: none).
	Logger *zerolog.Logger
	// Registry receives the metrics (nil: a registry of the server's own, so two
	// servers in one process do not collide).
	Registry *prometheus.Registry
}

// DefaultMaxBody is Config.MaxBody's default: 32 MiB.
const DefaultMaxBody = 32 << 20

// DefaultWriteTimeout is Config.WriteTimeout's default.
const DefaultWriteTimeout = 30 * time.Second

// Server is grefine's HTTP front end. Handler gives the routes with their middleware;
// Serve runs them until the context ends, then drains.
type Server struct {
	cfg     Config
	p       *pipeline.Pipeline
	log     zerolog.Logger
	metrics *metrics
	tokens  [][32]byte
	handler http.Handler
	routes  []route
	paths   *http.ServeMux    // the routes' paths without methods, for 405
	allow   map[string]string // path pattern -> its methods

	ready atomic.Bool
	base  context.Context
	stop  context.CancelCauseFunc
}

// route is one entry of the routing table; the OpenAPI document lists the same ones.
type route struct {
	method, path string
	open         bool // no bearer token needed
	h            http.HandlerFunc
}

// New builds the server: routes, middleware and metrics. It starts nothing.
func New(cfg Config) (*Server, error) {
	if cfg.Pipeline == nil {
		return nil, errors.New("server: no pipeline")
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	switch {
	case cfg.MaxBody < 0:
		return nil, fmt.Errorf("server: max body %d must be > 0", cfg.MaxBody)
	case cfg.Timeout < 0 || cfg.DrainTimeout < 0:
		return nil, fmt.Errorf("server: timeout %v and drain timeout %v must be >= 0", cfg.Timeout, cfg.DrainTimeout)
	case (cfg.TLSCert == "") != (cfg.TLSKey == ""):
		return nil, errors.New("server: TLS needs both a certificate and a key")
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, p: cfg.Pipeline, log: zerolog.Nop()}
	if cfg.Logger != nil {
		s.log = *cfg.Logger
	}
	for _, t := range cfg.Tokens {
		s.tokens = append(s.tokens, hashToken(t))
	}
	var err error
	if s.metrics, err = newMetrics(cfg.Registry, cfg.GPU); err != nil {
		return nil, err
	}
	s.base, s.stop = context.WithCancelCause(context.Background())
	s.ready.Store(true)
	s.routes = s.routeTable()
	mux := http.NewServeMux()
	s.paths, s.allow = http.NewServeMux(), map[string]string{}
	for _, rt := range s.routes {
		h := http.Handler(rt.h)
		if !rt.open {
			h = s.auth(h)
		}
		mux.Handle(rt.method+" "+rt.path, h)
		if s.allow[rt.path] == "" {
			s.paths.Handle(rt.path, http.NotFoundHandler())
			s.allow[rt.path] = rt.method
		} else {
			s.allow[rt.path] += ", " + rt.method
		}
	}
	if cfg.Pprof {
		pp := http.NewServeMux()
		pp.HandleFunc("/debug/pprof/", pprof.Index)
		pp.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		pp.HandleFunc("/debug/pprof/profile", pprof.Profile)
		pp.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		pp.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.Handle("/debug/pprof/", s.auth(pp))
	}
	mux.HandleFunc("/", s.notFound)
	s.handler = s.requestID(s.accessLog(s.recoverPanic(s.limitBody(s.writeDeadline(mux)))))
	return s, nil
}

// routeTable is every endpoint: the REST API (/v1), the KServe v2 Open Inference
// Protocol (/v2), metrics and the OpenAPI document.
func (s *Server) routeTable() []route {
	return []route{
		{"POST", "/v1/assess", false, s.handleInfer(false)},
		{"POST", "/v1/refine", false, s.handleInfer(true)},
		{"GET", "/v1/info", false, s.handleInfo},
		{"GET", "/v1/requests/{id}", false, s.handleRequestState},
		{"DELETE", "/v1/requests/{id}", false, s.handleRequestCancel},
		{"GET", "/v2", false, s.handleV2Server},
		{"GET", "/v2/health/live", true, s.handleV2Live},
		{"GET", "/v2/health/ready", true, s.handleV2Ready},
		{"GET", "/v2/models/{model}", false, s.handleV2Model},
		{"GET", "/v2/models/{model}/ready", false, s.handleV2ModelReady},
		{"GET", "/v2/models/{model}/config", false, s.handleV2Config},
		{"POST", "/v2/models/{model}/infer", false, s.handleV2Infer},
		{"GET", "/metrics", true, s.metrics.handler().ServeHTTP},
		{"GET", "/openapi.json", true, s.handleOpenAPI},
	}
}

// Handler is the server's routes behind its middleware (request id, access log, panic
// recovery, body limit, write deadline, and per route the bearer-token check).
func (s *Server) Handler() http.Handler { return s.handler }

// Ready reports whether the server takes new inference requests (false once draining).
func (s *Server) Ready() bool { return s.ready.Load() }

// errDraining ends the requests still running when the drain timeout passes.
var errDraining = fmt.Errorf("%w: the server is shutting down and the drain timeout passed", pipeline.ErrUnavailable)

// Serve answers on ln until ctx ends, then drains: ready turns false, the listener
// closes, requests in flight get DrainTimeout to finish and are then cancelled with a
// clear error (503). It returns nil after a clean drain.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		// WriteTimeout 0: a response ends when its request does (Config.Timeout bounds
		// inference; SSE streams last as long as their request). Each write is bounded
		// by Config.WriteTimeout instead (the writeDeadline middleware).
		BaseContext: func(net.Listener) context.Context { return s.base },
		ErrorLog:    log.New(s.log.With().Str("source", "net/http").Logger(), "", 0),
	}
	if s.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("server: TLS: %w", err)
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, hs.TLSConfig)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info().Str("addr", ln.Addr().String()).Bool("tls", s.cfg.TLSCert != "").Bool("auth", len(s.tokens) > 0).Msg("serving")
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	return s.drain(hs, errc)
}

// drain is the graceful shutdown of Serve.
func (s *Server) drain(hs *http.Server, errc <-chan error) error {
	s.ready.Store(false)
	s.log.Info().Dur("drain_timeout", s.cfg.DrainTimeout).Msg("draining: no new requests, waiting for those in flight")
	dctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	if err := hs.Shutdown(dctx); err != nil {
		s.log.Warn().Msg("drain timeout passed: cancelling the requests still running")
		s.stop(errDraining)
		// A cancelled request ends within one denoising step; Shutdown again waits until
		// its error answer is written and the connection is idle.
		gctx, gcancel := context.WithTimeout(context.Background(), cancelGrace)
		defer gcancel()
		if err := hs.Shutdown(gctx); errors.Is(err, context.DeadlineExceeded) {
			s.log.Error().Dur("grace", cancelGrace).Msg("requests did not end within the grace after their cancellation: closing their connections")
			hs.Close()
		}
	}
	s.stop(errDraining)
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) {
		return fmt.Errorf("server: %w", e)
	}
	s.log.Info().Msg("drained")
	return nil
}

// cancelGrace bounds the wait, after the drain timeout cancelled the requests still
// running, for their error answers.
const cancelGrace = 30 * time.Second

// ListenAndServe listens on addr (TCP) and calls Serve.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return s.Serve(ctx, ln)
}
