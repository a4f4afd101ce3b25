package bench

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/grefine/grefine/internal/files"
)

// Plot file names in --out.
const (
	PlotLatencyCDF  = "latency_cdf.png"
	PlotThroughput  = "throughput.png"
	PlotGPUTimeline = "gpu_timeline.png"
)

// WritePlots draws the PNG plots of r into dir and returns their names: the latency CDF
// of every run, throughput against concurrency (or offered rate, for the server
// scenario) and, with a GPU, utilisation and power over time.
func WritePlots(r *Report, dir string) ([]string, error) {
	var out []string
	if p := latencyCDF(r); p != nil {
		if err := savePlot(p, filepath.Join(dir, PlotLatencyCDF), 7*vg.Inch, 4.5*vg.Inch); err != nil {
			return out, err
		}
		out = append(out, PlotLatencyCDF)
	}
	if p := throughputPlot(r); p != nil {
		if err := savePlot(p, filepath.Join(dir, PlotThroughput), 7*vg.Inch, 4.5*vg.Inch); err != nil {
			return out, err
		}
		out = append(out, PlotThroughput)
	}
	if r.GPU.Available && len(r.GPU.Timeline) > 0 {
		if err := gpuTimeline(r, filepath.Join(dir, PlotGPUTimeline)); err != nil {
			return out, err
		}
		out = append(out, PlotGPUTimeline)
	}
	return out, nil
}

func latencyCDF(r *Report) *plot.Plot {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s %s: latency CDF", r.Workload, r.Scenario)
	p.X.Label.Text = "latency (ms)"
	p.Y.Label.Text = "fraction of requests"
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())
	n := 0
	for i, run := range r.Runs {
		var lat []float64
		for _, rec := range run.Records {
			if rec.Error == "" {
				lat = append(lat, rec.LatencyMs)
			}
		}
		if len(lat) == 0 {
			continue
		}
		slices.Sort(lat)
		xy := make(plotter.XYs, 0, 2*len(lat))
		for k, v := range lat {
			xy = append(xy, plotter.XY{X: v, Y: float64(k) / float64(len(lat))}, plotter.XY{X: v, Y: float64(k+1) / float64(len(lat))})
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			continue
		}
		l.Color = plotutil.Color(i)
		p.Add(l)
		p.Legend.Add(runLabel(run), l)
		n++
	}
	if n == 0 {
		return nil
	}
	p.Legend.Top, p.Legend.Left = false, false
	return p
}

func throughputPlot(r *Report) *plot.Plot {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s %s: throughput", r.Workload, r.Scenario)
	p.Y.Label.Text = "completed requests/s"
	p.X.Label.Text = "requests in flight (concurrency)"
	var xy plotter.XYs
	for _, run := range r.Runs {
		if run.Samples == 0 {
			continue
		}
		x := 1.0
		switch run.Scenario {
		case Server:
			x = run.TargetQPS
			p.X.Label.Text = "offered rate (qps)"
		case Sweep, Offline:
			x = float64(run.Concurrency)
		}
		xy = append(xy, plotter.XY{X: x, Y: run.Throughput})
	}
	if len(xy) == 0 {
		return nil
	}
	slices.SortStableFunc(xy, func(a, b plotter.XY) int {
		switch {
		case a.X < b.X:
			return -1
		case a.X > b.X:
			return 1
		}
		return 0
	})
	p.Add(plotter.NewGrid())
	if err := plotutil.AddLinePoints(p, "throughput", xy); err != nil {
		return nil
	}
	p.Y.Min = 0
	return p
}

// gpuTimeline draws utilisation (top) and power (bottom) per GPU against time.
func gpuTimeline(r *Report, path string) error {
	util, power := plot.New(), plot.New()
	util.Title.Text = "GPU utilisation"
	util.Y.Label.Text = "%"
	util.Y.Min, util.Y.Max = 0, 100
	power.Title.Text = "GPU power"
	power.Y.Label.Text = "W"
	power.X.Label.Text = "time (s)"
	util.X.Label.Text = "time (s)"
	for _, p := range []*plot.Plot{util, power} {
		p.Add(plotter.NewGrid())
	}
	byGPU := map[int][2]plotter.XYs{}
	for _, s := range r.GPU.Timeline {
		for _, g := range s.GPUs {
			v := byGPU[g.Index]
			if g.GPUUtil != nil {
				v[0] = append(v[0], plotter.XY{X: s.T, Y: float64(*g.GPUUtil)})
			}
			if g.PowerW != nil {
				v[1] = append(v[1], plotter.XY{X: s.T, Y: *g.PowerW})
			}
			byGPU[g.Index] = v
		}
	}
	for idx, v := range byGPU {
		for k, p := range []*plot.Plot{util, power} {
			if len(v[k]) == 0 {
				continue
			}
			l, err := plotter.NewLine(v[k])
			if err != nil {
				return err
			}
			l.Color = plotutil.Color(idx)
			p.Add(l)
			p.Legend.Add(fmt.Sprintf("gpu %d", idx), l)
		}
	}
	img := vgimg.New(8*vg.Inch, 6*vg.Inch)
	dc := draw.New(img)
	plots := [][]*plot.Plot{{util}, {power}}
	cs := plot.Align(plots, draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Points(8)}, dc)
	util.Draw(cs[0][0])
	power.Draw(cs[1][0])
	return files.WriteAtomic(path, func(w io.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
		return err
	})
}

func savePlot(p *plot.Plot, path string, w, h vg.Length) error {
	wt, err := p.WriterTo(w, h, "png")
	if err != nil {
		return fmt.Errorf("plot %s: %w", filepath.Base(path), err)
	}
	return files.WriteAtomic(path, func(out io.Writer) error {
		_, err := wt.WriteTo(out)
		return err
	})
}
