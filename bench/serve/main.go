package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/grefine/grefine/engine"
	_ "github.com/grefine/grefine/engine/cpu" // the cpu device (the pipeline's default, imageio's resize)
	_ "github.com/grefine/grefine/engine/ort" // the embedded default backend
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
)

const prompt = "Mr. Beans wearing sun glasses with blue doctor suit and stripe tie"

func main() {
	bin := flag.String("grefine", "", "the grefine binary to serve with (required)")
	models := flag.String("models", "testdata/models/tiny", "model set")
	image := flag.String("image", "testdata/images/sample.png", "input image (resized to 96x64)")
	mode := flag.String("mode", "all", "throughput, overload, sigterm, soak or all (all = the first three)")
	nAssess := flag.Int("n-assess", 200, "assess requests per concurrency level")
	nRefine := flag.Int("n-refine", 12, "refine requests per concurrency level")
	soak := flag.Duration("soak", 10*time.Minute, "soak duration")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "bench/serve: -grefine is required")
		os.Exit(2)
	}
	b, err := newBench(*bin, *models, *image)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/serve:", err)
		os.Exit(1)
	}
	run := map[string]func() error{
		"throughput": func() error { return b.throughput(*nAssess, *nRefine) },
		"overload":   b.overload,
		"sigterm":    b.sigterm,
		"soak":       func() error { return b.soak(*soak) },
	}
	modes := []string{*mode}
	if *mode == "all" {
		modes = []string{"throughput", "overload", "sigterm"}
	}
	for _, m := range modes {
		f, ok := run[m]
		if !ok {
			fmt.Fprintf(os.Stderr, "bench/serve: unknown -mode %q\n", m)
			os.Exit(2)
		}
		if err := f(); err != nil {
			fmt.Fprintf(os.Stderr, "bench/serve: %s: %v\n", m, err)
			os.Exit(1)
		}
	}
}

type bench struct {
	bin, models string
	png         []byte
	assessBody  []byte
	refineBody  []byte
	refineP     pipeline.Params
	t1Assess    float64 // req/s at concurrency 1 through the server (throughput mode)
}

func newBench(bin, models, image string) (*bench, error) {
	img, err := imageio.ReadFile(image, imageio.DefaultLimits)
	if err != nil {
		return nil, err
	}
	var png bytes.Buffer
	if err := imageio.EncodePNG(&png, imageio.ResizeBicubicPIL(img, 96, 64)); err != nil {
		return nil, err
	}
	b := &bench{bin: bin, models: models, png: png.Bytes()}
	body := func(params map[string]any) []byte {
		j, _ := json.Marshal(map[string]any{"image": base64.StdEncoding.EncodeToString(b.png), "prompt": prompt, "params": params})
		return j
	}
	b.assessBody = body(nil)
	b.refineBody = body(map[string]any{"seed": 1, "steps1": 2, "steps2": 2})
	return b, nil
}

// proc is a `grefine serve` child process.
type proc struct {
	cmd  *exec.Cmd
	url  string
	log  *os.File
	done chan error
}

func (b *bench) start(args ...string) (*proc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	log, err := os.CreateTemp("", "grefine-serve-*.log")
	if err != nil {
		return nil, err
	}
	full := append([]string{"--models", b.models, "--hash-cache", "", "serve", "--addr", addr}, args...)
	cmd := exec.Command(b.bin, full...)
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, url: "http://" + addr, log: log, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	for i := 0; i < 600; i++ {
		resp, err := http.Get(p.url + "/v2/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case err := <-p.done:
			return nil, fmt.Errorf("grefine serve exited: %v (log %s)", err, log.Name())
		case <-time.After(100 * time.Millisecond):
		}
	}
	p.stop()
	return nil, errors.New("grefine serve did not become ready in 60 s")
}

// stop sends SIGTERM and waits; it returns the exit status.
func (p *proc) stop() int {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	p.log.Close()
	return p.cmd.ProcessState.ExitCode()
}

// rss is the child's resident set now and at its peak, in MiB.
func (p *proc) rss() (now, peak float64) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.cmd.Process.Pid), "status"))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			now = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return now, peak
}

// countPacer runs as fast as the workers allow, n hits in all.
type countPacer struct{ n uint64 }

func (c countPacer) Pace(_ time.Duration, hits uint64) (time.Duration, bool) { return 0, hits >= c.n }
func (c countPacer) Rate(time.Duration) float64                              { return 0 }

// attack runs targets against url and returns the results.
func attack(url string, body []byte, pacer vegeta.Pacer, du time.Duration, workers, maxWorkers uint64) []*vegeta.Result {
	tgt := vegeta.Target{Method: "POST", URL: url, Body: body, Header: http.Header{"Content-Type": {"application/json"}}}
	atk := vegeta.NewAttacker(vegeta.Workers(workers), vegeta.MaxWorkers(maxWorkers), vegeta.Timeout(5*time.Minute), vegeta.MaxBody(1<<20))
	var out []*vegeta.Result
	for r := range atk.Attack(vegeta.NewStaticTargeter(tgt), pacer, du, "grefine") {
		out = append(out, r)
	}
	return out
}

// stats are throughput and latency percentiles of one run.
type stats struct {
	n        int
	rps      float64
	p50, p99 time.Duration
}

func statsOf(lat []time.Duration, wall time.Duration) stats {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	return stats{n: len(lat), rps: float64(len(lat)) / wall.Seconds(), p50: pct(0.50), p99: pct(0.99)}
}

func (s stats) String() string {
	return fmt.Sprintf("%.2f req/s, p50 %s, p99 %s", s.rps, s.p50.Round(100*time.Microsecond), s.p99.Round(100*time.Microsecond))
}

// throughput: the same requests through the server and through the pipeline API in this
// process, at concurrency 1, 2 and 4 (slots 4 on both).
func (b *bench) throughput(nAssess, nRefine int) error {
	backend, err := engine.NewBackend("ort", nil)
	if err != nil {
		return err
	}
	defer backend.Close()
	p, err := pipeline.Open(context.Background(), pipeline.Config{Models: b.models, BackendInstance: backend, Slots: 4})
	if err != nil {
		return err
	}
	defer p.Close()
	b.refineP = p.DefaultParams()
	b.refineP.Seed, b.refineP.Steps1, b.refineP.Steps2 = 1, 2, 2
	srv, err := b.start("--slots", "4", "--queue", "0")
	if err != nil {
		return err
	}
	// Warm both up (ORT's first runs, the text-feature cache) before measuring.
	for _, kind := range []string{"assess", "refine"} {
		if _, err := b.direct(p, kind, 3, 1); err != nil {
			return err
		}
		body := b.assessBody
		if kind == "refine" {
			body = b.refineBody
		}
		attack(srv.url+"/v1/"+kind, body, countPacer{3}, 0, 1, 1)
	}
	fmt.Println("| request | concurrency | n | pipeline API (before / after the server run) | server (HTTP, JSON + base64) | overhead (mean pipeline / server throughput) |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, kind := range []string{"assess", "refine"} {
		n, body := nAssess, b.assessBody
		if kind == "refine" {
			n, body = nRefine, b.refineBody
		}
		for _, c := range []int{1, 2, 4} {
			direct, err := b.direct(p, kind, n, c)
			if err != nil {
				return err
			}
			t0 := time.Now()
			res := attack(srv.url+"/v1/"+kind, body, countPacer{uint64(n)}, 0, uint64(c), uint64(c))
			wall := time.Since(t0)
			var lat []time.Duration
			for _, r := range res {
				if r.Code != http.StatusOK {
					return fmt.Errorf("%s: status %d: %s %s", kind, r.Code, r.Error, r.Body)
				}
				lat = append(lat, r.Latency)
			}
			via := statsOf(lat, wall)
			if kind == "assess" && c == 1 {
				b.t1Assess = via.rps
			}
			after, err := b.direct(p, kind, n, c) // the machine is shared: measure the pipeline before and after
			if err != nil {
				return err
			}
			fmt.Printf("| %s | %d | %d | %s / %s | %s | %.3f |\n", kind, c, n, direct, after, via, (direct.rps+after.rps)/2/via.rps)
		}
	}
	now, peak := srv.rss()
	fmt.Printf("\nserver RSS after the runs: %.0f MiB (peak %.0f MiB); exit status after SIGTERM: %d\n", now, peak, srv.stop())
	return nil
}

// direct runs n requests of kind on p from c goroutines: decode, then Assess or Refine.
func (b *bench) direct(p *pipeline.Pipeline, kind string, n, c int) (stats, error) {
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	next := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		next <- struct{}{}
	}
	close(next)
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				s := time.Now()
				img, err := p.DecodeImage(b.png)
				if err == nil {
					if kind == "assess" {
						_, err = p.Assess(context.Background(), pipeline.Request{Image: img, Prompt: prompt})
					} else {
						pr := b.refineP
						_, err = p.Refine(context.Background(), pipeline.Request{Image: img, Prompt: prompt, Params: &pr})
					}
				}
				mu.Lock()
				lat = append(lat, time.Since(s))
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return statsOf(lat, time.Since(t0)), firstErr
}

// codes counts results by status code ("error: ..." for transport errors).
func codes(res []*vegeta.Result) map[string]int {
	m := map[string]int{}
	for _, r := range res {
		k := strconv.Itoa(int(r.Code))
		if r.Code == 0 {
			k = "error: " + r.Error
		}
		m[k]++
	}
	return m
}

// overload: 10x the measured single-slot assess throughput against --slots 1 --queue 4.
func (b *bench) overload() error {
	t1 := b.t1Assess
	if t1 == 0 {
		t1 = 60 // measured on the 2-core dev machine when throughput mode did not run
	}
	rate := int(10 * t1)
	const du = 10 * time.Second
	srv, err := b.start("--slots", "1", "--queue", "4")
	if err != nil {
		return err
	}
	_, base := srv.rss()
	res := attack(srv.url+"/v1/assess", b.assessBody, vegeta.Rate{Freq: rate, Per: time.Second}, du, 16, 2000)
	_, peak := srv.rss()
	var m vegeta.Metrics
	for _, r := range res {
		m.Add(r)
	}
	m.Close()
	fivexx, clean429 := 0, 0
	for _, r := range res {
		if r.Code >= 500 {
			fivexx++
		}
		if r.Code == http.StatusTooManyRequests && bytes.Contains(r.Body, []byte(`"status":"busy"`)) && r.Headers.Get("Retry-After") != "" {
			clean429++
		}
	}
	exit := srv.stop()
	fmt.Printf("\noverload: %d req/s for %s (10x %.1f req/s) against --slots 1 --queue 4: %d requests, codes %v; "+
		"429 with Retry-After and a busy body: %d; 5xx: %d; server RSS peak %.0f MiB (ready: %.0f MiB); p50 %s p99 %s; exit %d\n",
		rate, du, t1, len(res), codes(res), clean429, fivexx, peak, base, m.Latencies.P50, m.Latencies.P99, exit)
	return nil
}

// sigterm: SIGTERM while 6 clients keep refining against --slots 2 --queue 8: every
// request the server accepted completes or gets a clean error; none is lost.
func (b *bench) sigterm() error {
	srv, err := b.start("--slots", "2", "--queue", "8", "--drain-timeout", "60s")
	if err != nil {
		return err
	}
	results := make(chan []*vegeta.Result, 1)
	go func() {
		results <- attack(srv.url+"/v1/refine", b.refineBody, countPacer{200}, 60*time.Second, 6, 6)
	}()
	time.Sleep(4 * time.Second)
	t0 := time.Now()
	exit := srv.stop()
	drain := time.Since(t0)
	res := <-results
	ok, clean, refused, lost := 0, 0, 0, 0
	var lostErrs []string
	for _, r := range res {
		switch {
		case r.Code == http.StatusOK:
			ok++
		case r.Code >= 400 && bytes.Contains(r.Body, []byte(`"error"`)):
			clean++
		case r.Code == 0 && strings.Contains(r.Error, "connection refused"):
			refused++
		default:
			lost++
			lostErrs = append(lostErrs, fmt.Sprintf("%d %s", r.Code, r.Error))
		}
	}
	logged := 0
	if lb, err := os.ReadFile(srv.log.Name()); err == nil {
		logged = bytes.Count(lb, []byte(`"path":"/v1/refine","status":200`))
	}
	fmt.Printf("\nsigterm: after 4 s of 6 clients refining (--slots 2 --queue 8), SIGTERM: exit %d after %s; %d requests: "+
		"%d completed 200 (server log: %d), %d clean errors, %d refused (connection refused after the listener closed), %d lost %v\n",
		exit, drain.Round(time.Millisecond), len(res), ok, logged, clean, refused, lost, lostErrs)
	return nil
}

// gauge reads one unlabelled metric of the server (0 when unreadable).
func gauge(url, name string) float64 {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	for _, line := range strings.Split(buf.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// soak: 2 clients alternate assess and refine for du against --slots 2; RSS sampled
// every 5 s, first minute against last minute.
func (b *bench) soak(du time.Duration) error {
	srv, err := b.start("--slots", "2", "--queue", "8")
	if err != nil {
		return err
	}
	var samples, heaps, gors []float64
	var times []time.Duration
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	t0 := time.Now()
	go func() {
		defer wg.Done()
		tk := time.NewTicker(5 * time.Second)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				now, _ := srv.rss()
				samples, times = append(samples, now), append(times, time.Since(t0))
				heaps = append(heaps, gauge(srv.url, "go_memstats_heap_inuse_bytes")/(1<<20))
				gors = append(gors, gauge(srv.url, "go_goroutines"))
			}
		}
	}()
	var mu sync.Mutex
	counts := map[string]int{}
	var cw sync.WaitGroup
	for c := 0; c < 2; c++ {
		cw.Add(1)
		go func() {
			defer cw.Done()
			// One attacker per client: its HTTP client (and keep-alive connection) is reused.
			atk := vegeta.NewAttacker(vegeta.Workers(1), vegeta.MaxWorkers(1), vegeta.Timeout(5*time.Minute), vegeta.MaxBody(1<<20))
			for i := 0; time.Since(t0) < du; i++ {
				kind, body := "assess", b.assessBody
				if i%4 == 3 {
					kind, body = "refine", b.refineBody
				}
				tgt := vegeta.Target{Method: "POST", URL: srv.url + "/v1/" + kind, Body: body, Header: http.Header{"Content-Type": {"application/json"}}}
				var res []*vegeta.Result
				for r := range atk.Attack(vegeta.NewStaticTargeter(tgt), countPacer{1}, 0, kind) {
					res = append(res, r)
				}
				mu.Lock()
				for k, v := range codes(res) {
					counts[kind+" "+k] += v
				}
				mu.Unlock()
			}
		}()
	}
	cw.Wait()
	close(stop)
	wg.Wait()
	_, peak := srv.rss()
	exit := srv.stop()
	mean := func(xs []float64, lo, hi time.Duration) float64 {
		s, n := 0.0, 0
		for i, t := range times {
			if t >= lo && t < hi {
				s += xs[i]
				n++
			}
		}
		if n == 0 {
			return 0
		}
		return s / float64(n)
	}
	first, last := mean(samples, 0, time.Minute), mean(samples, du-time.Minute, du+time.Minute)
	var perMinute []string
	for m := time.Duration(0); m < du; m += time.Minute {
		perMinute = append(perMinute, fmt.Sprintf("%.0f/%.0f/%.0f", mean(samples, m, m+time.Minute), mean(heaps, m, m+time.Minute), mean(gors, m, m+time.Minute)))
	}
	fmt.Printf("\nsoak per minute, RSS MiB / Go heap in use MiB / goroutines: %s\n", strings.Join(perMinute, " "))
	fmt.Printf("\nsoak: %s, 2 clients (3 assess : 1 refine), --slots 2: %v; RSS mean first minute %.1f MiB, last minute %.1f MiB (%+.1f%%), peak %.0f MiB; exit %d\n",
		du, counts, first, last, 100*(last-first)/first, peak, exit)
	return nil
}
