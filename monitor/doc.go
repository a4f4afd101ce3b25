// Package monitor reads NVIDIA GPUs through NVML (github.com/NVIDIA/go-nvml): what the
// GPUs are, how busy, hot and power-limited they are while grefine runs, and, for
// `grefine doctor`, whether there is a usable GPU at all and why not.
//
// # Opening
//
// Open takes an nvml.Interface: nvml.New() in production (nil means that), a go-nvml
// mock in tests (pkg/nvml/mock/dgxh100 fakes an 8×H100 server). It calls Init once
// and holds NVML until Close, which calls Shutdown exactly once and is idempotent and
// nil-safe.
//
// When NVML is unusable, Open returns an error wrapping ErrNoGPU whose message gives
// the reason: "nvml library libnvidia-ml.so.1 not found", "nvidia driver not loaded",
// "nvml reports no devices", .... After a failed Init the monitor calls nothing else
// in NVML (not Shutdown, not ErrorString): with go-nvml, a call whose symbol the
// library cannot resolve ends the process, so the reason texts are this package's.
// go-nvml leaves the library loaded after an Init that fails with the driver missing;
// that is harmless and happens once per Open.
//
//	m, err := monitor.Open(nvml.New())
//	if errors.Is(err, monitor.ErrNoGPU) { /* degrade: CPU only */ }
//	defer m.Close()
//
// # Reading
//
// Devices gives the static facts read at Open (index, name, UUID, compute capability,
// memory total, driver and CUDA driver versions, power limit, max clocks). Sample
// reads every GPU once: GPU and memory utilisation, memory used and free, power,
// SM and memory clocks, temperature, the total-energy counter (joules since the driver
// loaded; two samples' difference is the energy between them) and the clock event
// ("throttle") reasons decoded into names by ThrottleReasons (sw_power_cap,
// hw_slowdown, sw_thermal, hw_thermal, ...). Units: bytes, watts, joules, MHz,
// degrees C, percent.
//
// A metric the board does not support (NVML's ERROR_NOT_SUPPORTED) is not an error:
// its field is nil and its name (Metric* constants) is listed in Unsupported. Any
// other failure of one metric leaves the field nil and records the NVML message in
// Errors under the metric's name. Sample itself only fails after Close (ErrClosed).
// Drivers before r535 lack nvmlDeviceGetCurrentClocksEventReasons; Open looks the
// symbol up and falls back to the older throttle-reasons call.
//
// # Running
//
// Run samples at once and then every interval (a time.Ticker) until its context is
// done, calling fn on the caller's goroutine; it starts no goroutine, so cancelling
// the context is all the cleanup there is. A Summary used as fn's sink keeps min,
// mean and max per metric per GPU, plus how often each throttle reason was seen, for
// the benchmark report:
//
//	var sum monitor.Summary
//	go m.Run(ctx, 100*time.Millisecond, sum.Add)
//	... run the workload, cancel ctx ...
//	for _, g := range sum.GPUs() { g.Metrics[monitor.MetricPower].Max ... }
//
// # CUDA indices
//
// NVML numbers every GPU of the machine in PCI bus order; CUDA (engine/cuda, --gpus)
// numbers those visible to the process. CUDAToNVML (Monitor.ForCUDA with the process's
// environment) maps CUDA indices onto NVML devices through $CUDA_VISIBLE_DEVICES (indices
// or UUIDs; unset, the same index), assuming CUDA's order is PCI order, as it is among
// GPUs of one model (set CUDA_DEVICE_ORDER=PCI_BUS_ID on mixed machines); the server uses
// it to export the gauges of the GPUs that serve.
//
// # Probing
//
// Probe opens, reads the devices and one sample, and closes. It never fails:
// ProbeResult.Available is false with a Reason when there is no usable GPU. Lines
// gives the human form (one line per GPU, or "no gpu: <reason>"), and the struct
// marshals to JSON for `grefine doctor --json`.
//
// The package holds no global state; go-nvml keeps its own per-process library
// state. A Monitor is safe for concurrent use: calls are serialised, and Close waits
// for a Sample in progress so no NVML call follows Shutdown.
package monitor
