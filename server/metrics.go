package server

import (
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/grefine/grefine/monitor"
	"github.com/grefine/grefine/pipeline"
)

// metrics are the server's instruments, named after Triton's where they fit. Durations
// in the nv_* counters are cumulative microseconds, as Triton's are; the per-stage
// histograms are in seconds, as Prometheus prefers.
type metrics struct {
	reg      *prometheus.Registry
	success  *prometheus.CounterVec
	failure  *prometheus.CounterVec
	count    *prometheus.CounterVec
	request  *prometheus.CounterVec
	queue    *prometheus.CounterVec
	compute  *prometheus.CounterVec
	pending  *prometheus.GaugeVec
	stage    *prometheus.HistogramVec
	httpReqs *prometheus.CounterVec
}

// modelVersion is the version label of both models.
const modelVersion = "1"

func newMetrics(reg *prometheus.Registry, gpu Sampler, p *pipeline.Pipeline, log zerolog.Logger) (*metrics, error) {
	mv := []string{"model", "version"}
	m := &metrics{
		reg: reg,
		success: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nv_inference_request_success",
			Help: "Number of successful inference requests, all batch sizes"}, mv),
		failure: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nv_inference_request_failure",
			Help: "Number of failed inference requests, all batch sizes, by reason (the pipeline's status: input, busy, unavailable, canceled, internal)"},
			append(mv, "reason")),
		count: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nv_inference_count",
			Help: "Number of inferences performed (one image each; failed requests do not count)"}, mv),
		request: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nv_inference_request_duration_us",
			Help: "Cumulative inference request duration in microseconds (queue and compute)"}, mv),
		queue: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nv_inference_queue_duration_us",
			Help: "Cumulative inference queuing duration in microseconds (waiting for a slot)"}, mv),
		compute: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nv_inference_compute_infer_duration_us",
			Help: "Cumulative compute inference duration in microseconds (on a slot)"}, mv),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nv_inference_pending_request_count",
			Help: "Instantaneous number of pending requests awaiting execution (waiting for a slot)"}, mv),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "grefine_stage_duration_seconds",
			Help:    "Duration of each pipeline stage of successful requests (assess, stage1, stage2)",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12)}, append(mv, "stage")),
		httpReqs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grefine_http_requests_total",
			Help: "HTTP requests answered, by route and status code"}, []string{"route", "code"}),
	}
	cs := []prometheus.Collector{m.success, m.failure, m.count, m.request, m.queue, m.compute, m.pending, m.stage, m.httpReqs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
	var keep map[int]bool
	if p != nil {
		var serving map[int]string
		serving, keep = servingGPUs(p.Info().GPUs, gpu, log)
		if len(serving) > 0 {
			cs = append(cs, newSlotCollector(p, serving))
		}
	}
	if gpu != nil {
		cs = append(cs, newGPUCollector(gpu, keep))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// timing follows one inference request through its progress events: the queue wait
// ends at the first non-"queued" event, each stage at the next one.
type timing struct {
	m       *metrics
	model   string
	t0      time.Time
	started time.Time // slot acquired (first work event)
	stage   string
	stageT  time.Time
	stages  map[string]float64 // seconds
	queued  bool
}

func (m *metrics) begin(model string) *timing {
	m.pending.WithLabelValues(model, modelVersion).Inc()
	return &timing{m: m, model: model, t0: time.Now(), stages: map[string]float64{}, queued: true}
}

// event records a progress event.
func (t *timing) event(e pipeline.Event) {
	if e.Stage == "queued" {
		return
	}
	now := time.Now()
	t.leaveQueue(now)
	if e.Stage != t.stage {
		t.closeStage(now)
		t.stage, t.stageT = e.Stage, now
	}
}

func (t *timing) leaveQueue(now time.Time) {
	if t.queued {
		t.queued = false
		t.started = now
		t.m.pending.WithLabelValues(t.model, modelVersion).Dec()
	}
}

func (t *timing) closeStage(now time.Time) {
	if t.stage != "" {
		t.stages[t.stage] += now.Sub(t.stageT).Seconds()
	}
}

// end records the outcome.
func (t *timing) end(err error) {
	now := time.Now()
	if t.started.IsZero() {
		t.started = now
	}
	t.leaveQueue(now)
	t.closeStage(now)
	l := []string{t.model, modelVersion}
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) }
	t.m.request.WithLabelValues(l...).Add(us(now.Sub(t.t0)))
	t.m.queue.WithLabelValues(l...).Add(us(t.started.Sub(t.t0)))
	t.m.compute.WithLabelValues(l...).Add(us(now.Sub(t.started)))
	if err != nil {
		t.m.failure.WithLabelValues(t.model, modelVersion, statusName(err)).Inc()
		return
	}
	t.m.success.WithLabelValues(l...).Inc()
	t.m.count.WithLabelValues(l...).Inc()
	for st, sec := range t.stages {
		t.m.stage.WithLabelValues(t.model, modelVersion, st).Observe(sec)
	}
}

// Sampler reads GPUs; *monitor.Monitor is one.
type Sampler interface {
	Devices() []monitor.DeviceInfo
	Sample() (monitor.Sample, error)
}

// servingGPUs are the pipeline's GPUs by CUDA index, each with its NVML UUID where NVML
// knows it (monitor.CUDAToNVML, honouring $CUDA_VISIBLE_DEVICES), and the NVML indices
// of those GPUs (nil: export every NVML GPU, when the mapping is unknown: no NVML, or
// emulated GPUs).
func servingGPUs(gpus []pipeline.GPU, nv Sampler, log zerolog.Logger) (map[int]string, map[int]bool) {
	serving := map[int]string{}
	cuda := make([]int, len(gpus))
	emulated := false
	for i, g := range gpus {
		serving[g.Index] = ""
		cuda[i] = g.Index
		emulated = emulated || g.Device.Emulated
	}
	if nv == nil || len(gpus) == 0 || emulated {
		return serving, nil
	}
	v, set := os.LookupEnv(monitor.EnvVisibleDevices)
	devs, err := monitor.CUDAToNVML(nv.Devices(), v, set, cuda)
	if err != nil {
		log.Warn().Err(err).Msg("the GPUs that serve are not matched with NVML's: nv_gpu_* covers every GPU")
		return serving, nil
	}
	keep := map[int]bool{}
	for i, d := range devs {
		serving[cuda[i]] = d.UUID
		keep[d.Index] = true
	}
	return serving, keep
}

// slotCollector exports what each GPU that serves is doing: its slots, the busy ones,
// and the requests it has run, labelled with the CUDA index and the NVML UUID (empty
// when unknown), read from the pipeline at each scrape.
type slotCollector struct {
	p                  *pipeline.Pipeline
	uuid               map[int]string
	slots, busy, count *prometheus.Desc
}

func newSlotCollector(p *pipeline.Pipeline, uuid map[int]string) *slotCollector {
	l := []string{"gpu", "gpu_uuid"}
	return &slotCollector{p: p, uuid: uuid,
		slots: prometheus.NewDesc("grefine_gpu_slots", "Execution slots on this GPU (one request each); the GPUs listed are those that serve", l, nil),
		busy:  prometheus.NewDesc("grefine_gpu_slots_busy", "Slots of this GPU running a request now", l, nil),
		count: prometheus.NewDesc("grefine_gpu_requests_total", "Requests that have run on this GPU (counted when they got a slot)", l, nil),
	}
}

func (c *slotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.slots, c.busy, c.count} {
		ch <- d
	}
}

func (c *slotCollector) Collect(ch chan<- prometheus.Metric) {
	for _, g := range c.p.GPULoad() {
		l := []string{strconv.Itoa(g.Index), c.uuid[g.Index]}
		ch <- prometheus.MustNewConstMetric(c.slots, prometheus.GaugeValue, float64(g.Slots), l...)
		ch <- prometheus.MustNewConstMetric(c.busy, prometheus.GaugeValue, float64(g.Busy), l...)
		ch <- prometheus.MustNewConstMetric(c.count, prometheus.CounterValue, float64(g.Requests), l...)
	}
}

// gpuCollector exports Triton's GPU gauges, sampled at each scrape, for the GPUs that
// serve (keep: NVML indices; nil: every GPU). Energy is the integral of the power
// readings over time (trapezoids between scrapes), in joules since the server started.
type gpuCollector struct {
	gpu                        Sampler
	keep                       map[int]bool
	uuids                      []string
	util, mem, total, power, e *prometheus.Desc

	mu     sync.Mutex
	last   time.Time
	lastW  []float64
	joules []float64
}

func newGPUCollector(gpu Sampler, keep map[int]bool) *gpuCollector {
	l := []string{"gpu_uuid"}
	c := &gpuCollector{gpu: gpu, keep: keep,
		util:  prometheus.NewDesc("nv_gpu_utilization", "GPU utilization rate [0.0 - 1.0)", l, nil),
		mem:   prometheus.NewDesc("nv_gpu_memory_used_bytes", "GPU used memory, in bytes", l, nil),
		total: prometheus.NewDesc("nv_gpu_memory_total_bytes", "GPU total memory, in bytes", l, nil),
		power: prometheus.NewDesc("nv_gpu_power_usage", "GPU power usage in watts", l, nil),
		e:     prometheus.NewDesc("nv_energy_consumption", "GPU energy consumption in joules since the server started", l, nil),
	}
	for _, d := range gpu.Devices() {
		c.uuids = append(c.uuids, d.UUID)
	}
	c.lastW, c.joules = make([]float64, len(c.uuids)), make([]float64, len(c.uuids))
	return c
}

func (c *gpuCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.util, c.mem, c.total, c.power, c.e} {
		ch <- d
	}
}

func (c *gpuCollector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.gpu.Sample()
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	devs := c.gpu.Devices()
	for _, g := range s.GPUs {
		i := g.Index
		if i < 0 || i >= len(c.uuids) || (c.keep != nil && !c.keep[i]) {
			continue
		}
		u := c.uuids[i]
		if g.GPUUtil != nil {
			ch <- prometheus.MustNewConstMetric(c.util, prometheus.GaugeValue, float64(*g.GPUUtil)/100, u)
		}
		if g.MemUsed != nil {
			ch <- prometheus.MustNewConstMetric(c.mem, prometheus.GaugeValue, float64(*g.MemUsed), u)
		}
		if i < len(devs) && devs[i].MemoryTotal > 0 {
			ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(devs[i].MemoryTotal), u)
		}
		if g.PowerW != nil {
			w := *g.PowerW
			ch <- prometheus.MustNewConstMetric(c.power, prometheus.GaugeValue, w, u)
			if !c.last.IsZero() {
				c.joules[i] += (w + c.lastW[i]) / 2 * s.Time.Sub(c.last).Seconds()
			}
			c.lastW[i] = w
		}
		ch <- prometheus.MustNewConstMetric(c.e, prometheus.CounterValue, c.joules[i], u)
	}
	c.last = s.Time
}
