package monitor

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Stat is min, mean and max of one metric over the samples that carried it. N counts
// them; a metric never read has no Stat at all.
type Stat struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	Max  float64 `json:"max"`
	N    int     `json:"n"`
	sum  float64
}

func (s *Stat) add(v float64) {
	if s.N == 0 {
		s.Min, s.Max = v, v
	}
	s.Min, s.Max = math.Min(s.Min, v), math.Max(s.Max, v)
	s.N++
	s.sum += v
	s.Mean = s.sum / float64(s.N)
}

// GPUSummary aggregates one GPU over a run. Metrics is keyed by the Metric* names
// (mem_used and mem_free in bytes, power in watts, clocks in MHz, temperature in
// degrees C, utilisations in percent, energy in joules: a counter, so Max − Min is the
// energy used over the run). Throttle lists every clock event reason seen
// at least once, with the number of samples that showed it.
type GPUSummary struct {
	Index    int             `json:"index"`
	Metrics  map[string]Stat `json:"metrics"`
	Throttle map[string]int  `json:"throttle,omitempty"`
}

// Summary aggregates Samples (min/mean/max per metric per GPU) for benchmark
// reports. Add it as Run's callback; it is safe for concurrent use. The zero value
// is ready.
type Summary struct {
	mu          sync.Mutex
	samples     int
	first, last time.Time
	gpus        map[int]*GPUSummary
}

// Add folds one Sample into the summary.
func (s *Summary) Add(sm Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.samples == 0 || sm.Time.Before(s.first) {
		s.first = sm.Time
	}
	if sm.Time.After(s.last) {
		s.last = sm.Time
	}
	s.samples++
	if s.gpus == nil {
		s.gpus = make(map[int]*GPUSummary)
	}
	for _, g := range sm.GPUs {
		gs := s.gpus[g.Index]
		if gs == nil {
			gs = &GPUSummary{Index: g.Index, Metrics: make(map[string]Stat)}
			s.gpus[g.Index] = gs
		}
		for name, v := range g.values() {
			st := gs.Metrics[name]
			st.add(v)
			gs.Metrics[name] = st
		}
		for _, r := range g.Throttle {
			if gs.Throttle == nil {
				gs.Throttle = make(map[string]int)
			}
			gs.Throttle[r]++
		}
	}
}

// Samples returns how many Samples were added and the time they span.
func (s *Summary) Samples() (n int, span time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples, s.last.Sub(s.first)
}

// GPUs returns one GPUSummary per GPU seen, by index. The maps are copies.
func (s *Summary) GPUs() []GPUSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]GPUSummary, 0, len(s.gpus))
	for _, g := range s.gpus {
		c := GPUSummary{Index: g.Index, Metrics: make(map[string]Stat, len(g.Metrics))}
		for k, v := range g.Metrics {
			c.Metrics[k] = v
		}
		if g.Throttle != nil {
			c.Throttle = make(map[string]int, len(g.Throttle))
			for k, v := range g.Throttle {
				c.Throttle[k] = v
			}
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b GPUSummary) int { return a.Index - b.Index })
	return out
}

// values yields the numeric metrics this sample carries.
func (g GPUSample) values() map[string]float64 {
	v := make(map[string]float64, 8)
	put := func(name string, ok bool, x float64) {
		if ok {
			v[name] = x
		}
	}
	put(MetricGPUUtil, g.GPUUtil != nil, deref32(g.GPUUtil))
	put(MetricMemUtil, g.MemUtil != nil, deref32(g.MemUtil))
	put(MetricMemUsed, g.MemUsed != nil, deref64(g.MemUsed))
	put(MetricMemFree, g.MemFree != nil, deref64(g.MemFree))
	put(MetricSMClock, g.SMClockMHz != nil, deref32(g.SMClockMHz))
	put(MetricMemClock, g.MemClockMHz != nil, deref32(g.MemClockMHz))
	put(MetricTemperature, g.TempC != nil, deref32(g.TempC))
	if g.PowerW != nil {
		v[MetricPower] = *g.PowerW
	}
	if g.EnergyJ != nil {
		v[MetricEnergy] = *g.EnergyJ
	}
	return v
}

func deref32(p *uint32) float64 {
	if p == nil {
		return 0
	}
	return float64(*p)
}

func deref64(p *uint64) float64 {
	if p == nil {
		return 0
	}
	return float64(*p)
}
