// Package bench is grefine's throughput and latency harness (`grefine bench`), modelled
// on MLPerf Inference's LoadGen scenarios, Triton's perf_analyzer and trtexec, plus the
// end-to-end Go benchmarks (go test -bench) and the recorded results (RESULTS.md; GPU
// reports under gpu/).
//
// # Workloads
//
// A workload is a Target: one request in, its Outcome (when compute began, the stage
// timings) out. The scenarios need nothing else, so a test drives them with a fake.
//
//	AssessTarget   the whole assess on a loaded pipeline.Pipeline; stages are the report's
//	               TimingsMillis as "assess/<name>" (preprocess, clip_image, pq, parse,
//	               clip_text, aq, fuse) and "assess" (its total)
//	RefineTarget   the whole refine (assess, stage 1, stage 2); adds "stage1" and "stage2"
//	               (the refiner's stage reports) and, from the progress events,
//	               "stageN/unet_steps" (mean interval between step events × steps) and
//	               "stageN/other" (the rest of the stage: text encoders, VAE encode and
//	               decode, resizes, colour fix, paste), plus "total"
//	EngineTarget   one engine alone (workload engine:NAME) on fixed synthetic tensors of its
//	               contract's shapes, as trtexec does: batch --batch, token sequences 77,
//	               image sides --size, latent sides --size/8; --shape NAME=AxBxC overrides
//
// Queue time runs from a request's issue to the pipeline's first non-"queued" event (it
// got a slot); compute time from there to completion; latency is their sum. The
// pipeline caches text features per prompt, so in a run that cycles over N inputs only
// the first request of each prompt encodes its texts (the assess/clip_text p50 against
// its p99 shows it); `grefine bench --no-feature-cache` measures every request uncached.
//
// Inputs are a JSONL file (LoadJSONL: {"image": PATH, "prompt": TEXT, "id": NAME} per
// line, paths relative to the file) or the built-in synthetic set (Synthetic: n
// deterministic size×size images, colour fields with a disc, a bar and seeded noise,
// paired in turn with SyntheticPrompts). Requests take the inputs in turn, cyclically.
//
// # Scenarios
//
// Warm-up requests (--warmup) run first, one at a time, and are excluded. Each run then
// lasts --duration, or --count requests; --repeats repeats it.
//
//	single-stream  one request at a time; latency percentiles
//	offline        every request of the run issued at once (MLPerf's single query of all
//	               samples; without --count the size is duration × the warm-up rate ×
//	               slots); throughput in images/s
//	server         requests arrive as a Poisson process at --qps (PoissonArrivals: seeded
//	               exponential gaps, the same schedule for the same seed); latency counts
//	               from the scheduled arrival; the run meets the bound when it had no
//	               error and its p99 <= --latency-bound. Requests still running 10 bounds
//	               after the last arrival are cancelled (errors: the rate is too high).
//	               --find-peak runs FindPeak: doubling or halving from --qps (or the
//	               warm-up rate) until a passing and a failing rate bracket the peak, then
//	               bisection to 5%; every probe is a run in the report
//	sweep          closed loop at each --concurrency level (that many requests in flight)
//
// Percentiles (Percentile, Summarize) interpolate linearly between order statistics,
// numpy's default. A p99 means something only with enough samples: the report says how
// many lie above it (TailSamples), and with fewer than 100 the p99 is about the maximum.
//
// # Machine and GPU
//
// Machine records the CPU model, logical cores, GOMAXPROCS, memory, the load average at
// the start and the process's RSS (current and peak). The GPU side goes through package
// monitor (NVML): when it opens, a goroutine samples every GPU at 20 Hz (utilisation,
// memory, power, SM and memory clocks, temperature, throttle reasons, the energy
// counter) into the timeline, and each run records the energy counter's difference
// over the run and joules per completed image. Without a usable GPU the report says
// why (monitor's reason: library not found, driver not loaded, no devices) and holds
// the CPU side only.
//
// # Outputs
//
// WriteOutputs writes into --out, each file atomically: bench.json (Report, below),
// bench.md (Report.Markdown: the setup, one row per run, the stage split, the metrics
// over repeats, the baseline and the comparison) and PNG plots drawn with gonum/plot:
// latency_cdf.png (every run's empirical CDF), throughput.png (against concurrency, or
// offered rate for the server scenario) and, with a GPU, gpu_timeline.png (utilisation
// and power against time).
//
// # bench.json (schema grefine-bench/1)
//
// Times are milliseconds unless a name says _s (seconds); rates are per second. A Summary
// is {n, mean, min, p50, p90, p95, p99, p99_9, max}.
//
//	schema            "grefine-bench/1"
//	grefine_version   pipeline.Version
//	created           RFC 3339 UTC time
//	command           the command line
//	workload          "assess", "refine" or "engine:NAME"
//	scenario          "single-stream", "offline", "server" or "sweep"
//	settings          {duration_s, count, warmup, repeats, qps, latency_bound_ms,
//	                  find_peak, concurrency [levels], slots, seed}
//	pipeline          pipeline.Info of the loaded pipeline (assess, refine)
//	gpu_load          [pipeline.GPULoad]: per GPU of --gpus its index, slots, busy
//	                  slots at the end and the requests it ran (warm-up included)
//	engine            {name, backend, shapes ["input=AxB"]} (engine:NAME)
//	inputs            {source ("synthetic", "synthetic tensors" or the JSONL path), count,
//	                  width, height (of the first)}
//	machine           {cpu_model, cores, gomaxprocs, os, arch, go_version, mem_total_mib,
//	                  load_avg_1m, rss_mib, rss_peak_mib}
//	gpu               {available, reason (when not), interval_s, devices
//	                  [monitor.DeviceInfo], timeline [{t_s, gpus [monitor.GPUSample]}],
//	                  summary [monitor.GPUSummary]}
//	warmup_s          the warm-up's wall time
//	runs              [run]: every timed run (repeats, sweep levels, peak probes)
//	peak              {qps, converged, probes [{qps, meets, p99_ms}]} (--find-peak)
//	metrics           [{name, unit, better ("lower"/"higher"), values [one per repeat],
//	                  median, min, max}], sorted by name: throughput, latency_p50,
//	                  latency_p90, latency_p99, compute_mean, queue_mean, energy_per_image
//	                  (J, with a GPU), each "@cN" per sweep level; peak_qps; rss_peak
//	baseline          {command, samples, latency_ms Summary, throughput_per_s, stages_ms
//	                  {name: Summary}, info {...}, against, latency_ratio,
//	                  throughput_ratio, wall_s} (--baseline)
//	compare           {old, threshold, rows [{metric, unit, better, old Metric, new
//	                  Metric, change, verdict}], regressions, improvements} (--compare)
//	notes             [text]
//
// A run is {scenario, repeat, concurrency, target_qps, start_s, end_s (from the start of
// the benchmark), samples, errors, throughput_per_s, latency_ms, queue_ms, compute_ms
// (Summaries), stages_ms {name: Summary}, meets_bound (server), energy_j, j_per_image
// (with a GPU), records [{input, issued_s, queue_ms, compute_ms, latency_ms, stages_ms,
// error}]}.
//
// # Baseline (--baseline 'CMD')
//
// RunBaseline runs a competitor on the same inputs in the same invocation, after
// grefine, one request at a time, and the report gives the ratios: the competitor's
// median latency over grefine's first run's, and grefine's throughput over the
// competitor's. The command runs under `sh -c` with GREFINE_BENCH_INPUTS (a JSONL file
// of {"id", "image" (an absolute PNG path), "prompt", "parts" (assess: grefine's parse,
// [{text, noun, ancestor}])}), GREFINE_BENCH_WORKLOAD, GREFINE_BENCH_MODELS,
// GREFINE_BENCH_COUNT (timed requests, over the inputs in turn), GREFINE_BENCH_WARMUP and
// GREFINE_BENCH_THREADS (0: its default) in the environment, and prints one JSON object
// per line on stdout: {"id": ..., "ms": 123.4, "stages_ms": {...}} per timed request,
// {"warmup": true, ...} for a warm-up, {"info": {"description": ...}} about itself;
// other lines are logs. It must exit 0 and time at least one request.
// tools/bench_baseline.py is the shipped competitor: the PyTorch quality reference
// (tools/export/quality_ref.py) for assess, and for refine that plus diffusers'
// StableDiffusionXLInpaintPipeline (stage 1) and a PyTorch PASD loop (stage 2) on the
// tiny stand-ins; it needs the exporter's venv (.venv, made by `make fixtures`). Its
// refine runs on the tiny set only, and neither side of an assess comparison should
// cache text features (the reference has no cache: pass --no-feature-cache).
//
// # Compare (--compare OLD.json)
//
// Compare weighs each metric present in both reports: the change of the medians, and a
// verdict. Beyond the threshold (5%) a change is a regression or an improvement when the
// two min–max ranges over repeats do not overlap, else noise.
//
// # Go benchmarks
//
//	BenchmarkAssessTiny      assess of a 1024² image, 4-noun prompt, tiny model set, on
//	                         the loaded pipeline
//	BenchmarkAssessFullCached  a repeated prompt on the full-size CLIP ViT-B/16 (random
//	                         weights): set GRF_BENCH_MODELS to a set exported without --tiny
//	                         (the honest cache-off benchmark is bench/assesscpu)
//	BenchmarkRefineTiny      the whole refiner (both stages) with the tiny set, 256²
//	BenchmarkRefineOverhead  a 1024² refine with engines that return zeros at once:
//	                         everything but the engines runs (the Go-side overhead)
//	BenchmarkParse           prompts per second of the syntax parser
package bench
