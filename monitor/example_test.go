package monitor_test

import (
	"context"
	"fmt"
	"time"

	"github.com/grefine/grefine/monitor"
)

// ExampleMonitor opens a monitor on go-nvml's mock DGX H100 (pass nvml.New() in
// production), lists the GPUs, takes one sample and summarises a short run.
func ExampleMonitor() {
	m, err := monitor.Open(fakeDGX())
	if err != nil {
		fmt.Println(err) // e.g. "monitor: no gpu: nvidia driver not loaded (...)"
		return
	}
	defer m.Close()

	devs := m.Devices()
	fmt.Printf("%d x %s, sm %s, %d GiB\n", len(devs), devs[0].Name, devs[0].ComputeCapability, devs[0].MemoryTotal>>30)

	s, _ := m.Sample()
	g := s.GPUs[0]
	fmt.Printf("gpu 0: %.0f W, %d MHz, %d C, throttle %v\n", *g.PowerW, *g.SMClockMHz, *g.TempC, g.Throttle)

	var sum monitor.Summary
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_ = m.Run(ctx, 10*time.Millisecond, func(s monitor.Sample) {
		sum.Add(s)
		if n++; n == 3 {
			cancel()
		}
	})
	p := sum.GPUs()[7].Metrics[monitor.MetricPower]
	fmt.Printf("gpu 7 power over %d samples: min %.0f mean %.0f max %.0f W\n", p.N, p.Min, p.Mean, p.Max)
	// Output:
	// 8 x NVIDIA H100 80GB HBM3, sm 9.0, 80 GiB
	// gpu 0: 100 W, 1500 MHz, 30 C, throttle [sw_power_cap hw_slowdown]
	// gpu 7 power over 3 samples: min 170 mean 170 max 170 W
}
