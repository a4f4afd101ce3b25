package monitor_test

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/monitor"
)

func open(t *testing.T, lib nvml.Interface) *monitor.Monitor {
	t.Helper()
	m, err := monitor.Open(lib)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, m.Close()) })
	return m
}

func TestDevices(t *testing.T) {
	s := fakeDGX()
	devs := open(t, s).Devices()
	require.Len(t, devs, 8)
	for i, d := range devs {
		assert.Equal(t, i, d.Index)
		assert.Equal(t, "NVIDIA H100 80GB HBM3", d.Name)
		assert.Equal(t, device(s, i).UUID, d.UUID)
		assert.Equal(t, "9.0", d.ComputeCapability)
		assert.Equal(t, uint64(80*gib), d.MemoryTotal)
		assert.Equal(t, "550.54.15", d.DriverVersion)
		assert.Equal(t, "12.4", d.CUDADriverVersion)
		require.NotNil(t, d.PowerLimitW)
		assert.InDelta(t, 700.0, *d.PowerLimitW, 1e-9)
		require.NotNil(t, d.MaxSMClockMHz)
		require.NotNil(t, d.MaxMemClockMHz)
		assert.Equal(t, uint32(1980), *d.MaxSMClockMHz)
		assert.Equal(t, uint32(2619), *d.MaxMemClockMHz)
		assert.Empty(t, d.Unsupported)
		assert.Empty(t, d.Errors)
	}
	// UUIDs are random per mock: all distinct.
	seen := map[string]bool{}
	for _, d := range devs {
		seen[d.UUID] = true
	}
	assert.Len(t, seen, 8)
}

func TestDevicesIsACopy(t *testing.T) {
	m := open(t, fakeDGX())
	m.Devices()[0].Name = "changed"
	assert.Equal(t, "NVIDIA H100 80GB HBM3", m.Devices()[0].Name)
}

func TestSample(t *testing.T) {
	m := open(t, fakeDGX())
	before := time.Now()
	s, err := m.Sample()
	require.NoError(t, err)
	assert.False(t, s.Time.Before(before))
	require.Len(t, s.GPUs, 8)
	for i, g := range s.GPUs {
		assert.Equal(t, i, g.Index)
		require.NotNil(t, g.GPUUtil)
		require.NotNil(t, g.MemUtil)
		require.NotNil(t, g.MemUsed)
		require.NotNil(t, g.MemFree)
		require.NotNil(t, g.PowerW)
		require.NotNil(t, g.SMClockMHz)
		require.NotNil(t, g.MemClockMHz)
		require.NotNil(t, g.TempC)
		require.NotNil(t, g.ThrottleMask)
		assert.Equal(t, uint32(10*i), *g.GPUUtil)
		assert.Equal(t, uint32(5*i), *g.MemUtil)
		assert.Equal(t, uint64(i+1)*gib, *g.MemUsed)
		assert.Equal(t, uint64(80-(i+1))*gib, *g.MemFree)
		assert.InDelta(t, 100+10*float64(i), *g.PowerW, 1e-9)
		assert.Equal(t, uint32(1500+i), *g.SMClockMHz)
		assert.Equal(t, uint32(2619), *g.MemClockMHz)
		assert.Equal(t, uint32(30+i), *g.TempC)
		require.NotNil(t, g.EnergyJ)
		assert.InDelta(t, 1000*float64(i+1), *g.EnergyJ, 1e-9)
		assert.Empty(t, g.Unsupported)
		assert.Empty(t, g.Errors)
		if i == 0 {
			assert.Equal(t, []string{"sw_power_cap", "hw_slowdown"}, g.Throttle)
		} else {
			assert.Equal(t, uint64(0), *g.ThrottleMask)
			assert.Empty(t, g.Throttle)
		}
	}
}

func TestSampleNotSupported(t *testing.T) {
	s := fakeDGX()
	d := device(s, 3)
	d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		return nvml.Utilization{Gpu: 99}, nvml.ERROR_NOT_SUPPORTED
	}
	d.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 1, nvml.ERROR_NOT_SUPPORTED }
	d.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_GPU_IS_LOST }
	d.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	d.GetMaxClockInfoFunc = func(nvml.ClockType) (uint32, nvml.Return) { return 0, nvml.ERROR_NO_PERMISSION }

	m := open(t, s)
	info := m.Devices()[3]
	assert.Nil(t, info.PowerLimitW)
	assert.Nil(t, info.MaxSMClockMHz)
	assert.Nil(t, info.MaxMemClockMHz)
	assert.Equal(t, []string{"power_limit"}, info.Unsupported)
	assert.ElementsMatch(t, []string{"max_sm_clock", "max_mem_clock"}, keys(info.Errors))
	assert.Equal(t, "NVIDIA H100 80GB HBM3", info.Name, "the rest of the device still reads")

	sm, err := m.Sample()
	require.NoError(t, err, "unsupported metrics are not a sample error")
	g := sm.GPUs[3]
	assert.Nil(t, g.GPUUtil, "a value returned alongside NOT_SUPPORTED must not be used")
	assert.Nil(t, g.MemUtil)
	assert.Nil(t, g.PowerW)
	assert.Nil(t, g.ThrottleMask)
	assert.Nil(t, g.Throttle)
	assert.Nil(t, g.TempC)
	assert.Equal(t, []string{monitor.MetricGPUUtil, monitor.MetricMemUtil, monitor.MetricPower, monitor.MetricThrottle}, g.Unsupported)
	require.Equal(t, []string{monitor.MetricTemperature}, keys(g.Errors))
	assert.NotEmpty(t, g.Errors[monitor.MetricTemperature])
	require.NotNil(t, g.MemUsed, "supported metrics of the same device are still read")
	require.NotNil(t, g.SMClockMHz)
	// Other devices are untouched.
	assert.Empty(t, sm.GPUs[2].Unsupported)
	assert.NotNil(t, sm.GPUs[2].PowerW)
}

func TestThrottleFallbackBeforeR535(t *testing.T) {
	s := fakeDGX()
	s.LookupSymbolFunc = func(string) error { return errors.New("symbol not found") }
	for i := range s.Devices {
		d := device(s, i)
		d.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) {
			t.Error("GetCurrentClocksEventReasons called although the symbol is missing")
			return 0, nvml.ERROR_FUNCTION_NOT_FOUND
		}
		d.GetCurrentClocksThrottleReasonsFunc = func() (uint64, nvml.Return) {
			return nvml.ClocksThrottleReasonHwThermalSlowdown, nvml.SUCCESS
		}
	}
	sm, err := open(t, s).Sample()
	require.NoError(t, err)
	for _, g := range sm.GPUs {
		assert.Equal(t, []string{"hw_thermal"}, g.Throttle)
	}
}

func TestThrottleReasons(t *testing.T) {
	for _, tc := range []struct {
		name string
		mask uint64
		want []string
	}{
		{"none", 0, []string{}},
		{"idle", nvml.ClocksEventReasonGpuIdle, []string{"gpu_idle"}},
		{"power and thermal", nvml.ClocksEventReasonSwPowerCap | nvml.ClocksEventReasonSwThermalSlowdown | nvml.ClocksThrottleReasonHwThermalSlowdown,
			[]string{"sw_power_cap", "sw_thermal", "hw_thermal"}},
		{"all known", nvml.ClocksEventReasonAll, []string{"gpu_idle", "applications_clocks", "sw_power_cap", "hw_slowdown",
			"sync_boost", "sw_thermal", "hw_thermal", "hw_power_brake", "display_clocks", "board_limit", "reliability"}},
		{"unknown bits", 1<<40 | 1<<12 | nvml.ClocksThrottleReasonHwPowerBrakeSlowdown, []string{"hw_power_brake", "bit12", "bit40"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, monitor.ThrottleReasons(tc.mask))
		})
	}
}

// strictLib is an NVML whose Init returns initRet and whose every other function
// the monitor could reach fails the test; functions left unset panic, which fails
// it too.
func strictLib(t *testing.T, initRet nvml.Return) *mock.Interface {
	called := func(name string) { t.Errorf("%s called after Init returned %d", name, initRet) }
	return &mock.Interface{
		InitFunc:     func() nvml.Return { return initRet },
		ShutdownFunc: func() nvml.Return { called("Shutdown"); return nvml.SUCCESS },
		ErrorStringFunc: func(nvml.Return) string {
			called("ErrorString")
			return ""
		},
		DeviceGetCountFunc: func() (int, nvml.Return) { called("DeviceGetCount"); return 0, nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(int) (nvml.Device, nvml.Return) {
			called("DeviceGetHandleByIndex")
			return nil, nvml.ERROR_UNINITIALIZED
		},
		SystemGetDriverVersionFunc: func() (string, nvml.Return) {
			called("SystemGetDriverVersion")
			return "", nvml.ERROR_UNINITIALIZED
		},
		SystemGetCudaDriverVersionFunc: func() (int, nvml.Return) {
			called("SystemGetCudaDriverVersion")
			return 0, nvml.ERROR_UNINITIALIZED
		},
		ExtensionsFunc: func() nvml.ExtendedInterface { called("Extensions"); return nil },
	}
}

func TestOpenInitFailure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ret    nvml.Return
		reason string
	}{
		{"library not found", nvml.ERROR_LIBRARY_NOT_FOUND, "libnvidia-ml.so.1 not found"},
		{"driver not loaded", nvml.ERROR_DRIVER_NOT_LOADED, "driver not loaded"},
		{"no permission", nvml.ERROR_NO_PERMISSION, "no permission"},
		{"version mismatch", nvml.ERROR_LIB_RM_VERSION_MISMATCH, "versions differ"},
		{"other", nvml.ERROR_UNKNOWN, "nvml return 999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lib := strictLib(t, tc.ret)
			m, err := monitor.Open(lib)
			require.ErrorIs(t, err, monitor.ErrNoGPU)
			assert.Nil(t, m)
			assert.Contains(t, err.Error(), tc.reason)
			assert.Regexp(t, `^monitor: no gpu: `, err.Error())
			assert.Len(t, lib.InitCalls(), 1)

			p := monitor.Probe(strictLib(t, tc.ret))
			assert.False(t, p.Available)
			assert.Contains(t, p.Reason, tc.reason)
			assert.Empty(t, p.GPUs)
			assert.Equal(t, []string{"no gpu: " + p.Reason}, p.Lines())
		})
	}
}

func TestOpenNoDevices(t *testing.T) {
	lib := &mock.Interface{
		InitFunc:           func() nvml.Return { return nvml.SUCCESS },
		DeviceGetCountFunc: func() (int, nvml.Return) { return 0, nvml.SUCCESS },
		ShutdownFunc:       func() nvml.Return { return nvml.SUCCESS },
	}
	_, err := monitor.Open(lib)
	require.ErrorIs(t, err, monitor.ErrNoGPU)
	assert.Contains(t, err.Error(), "no devices")
	assert.Len(t, lib.ShutdownCalls(), 1, "a successful Init is undone")
}

func TestOpenCountFails(t *testing.T) {
	lib := &mock.Interface{
		InitFunc:           func() nvml.Return { return nvml.SUCCESS },
		DeviceGetCountFunc: func() (int, nvml.Return) { return 0, nvml.ERROR_UNKNOWN },
		ShutdownFunc:       func() nvml.Return { return nvml.SUCCESS },
	}
	_, err := monitor.Open(lib)
	require.ErrorIs(t, err, monitor.ErrNVML)
	assert.False(t, errors.Is(err, monitor.ErrNoGPU))
	assert.Len(t, lib.ShutdownCalls(), 1)
}

func TestClose(t *testing.T) {
	s := fakeDGX()
	m, err := monitor.Open(s)
	require.NoError(t, err)
	require.NoError(t, m.Close())
	require.NoError(t, m.Close())
	assert.Len(t, s.ShutdownCalls(), 1, "Shutdown exactly once")
	_, err = m.Sample()
	assert.ErrorIs(t, err, monitor.ErrClosed)
	err = m.Run(context.Background(), time.Millisecond, func(monitor.Sample) { t.Error("fn called after Close") })
	assert.ErrorIs(t, err, monitor.ErrClosed)

	var nilM *monitor.Monitor
	assert.NoError(t, nilM.Close())
}

func TestRun(t *testing.T) {
	m := open(t, fakeDGX())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []monitor.Sample
	err := m.Run(ctx, time.Millisecond, func(s monitor.Sample) {
		got = append(got, s)
		if len(got) == 3 {
			cancel()
		}
	})
	require.NoError(t, err)
	require.Len(t, got, 3, "fn is not called after ctx is done")
	for i := 1; i < len(got); i++ {
		assert.False(t, got[i].Time.Before(got[i-1].Time))
		assert.Len(t, got[i].GPUs, 8)
	}
}

func TestRunCancelledContext(t *testing.T) {
	m := open(t, fakeDGX())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := m.Run(ctx, time.Millisecond, func(monitor.Sample) { t.Error("fn called with a done ctx") })
	assert.NoError(t, err)
}

func TestRunBadInterval(t *testing.T) {
	m := open(t, fakeDGX())
	for _, d := range []time.Duration{0, -time.Second} {
		err := m.Run(context.Background(), d, func(monitor.Sample) { t.Error("fn called") })
		assert.ErrorIs(t, err, monitor.ErrInterval)
	}
}

// TestRunNoGoroutineLeak runs Run on its own goroutine, cancels it, and checks the
// goroutine count returns to where it was (Run must start none and stop its ticker).
func TestRunNoGoroutineLeak(t *testing.T) {
	m := open(t, fakeDGX())
	base := runtime.NumGoroutine()
	for range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		var n atomic.Int32
		done := make(chan error)
		go func() {
			done <- m.Run(ctx, 100*time.Microsecond, func(monitor.Sample) { n.Add(1) })
		}()
		require.Eventually(t, func() bool { return n.Load() >= 2 }, 10*time.Second, time.Millisecond)
		cancel()
		require.NoError(t, <-done)
	}
	// Polled by hand: require.Eventually runs its condition on a goroutine of its own.
	after := runtime.NumGoroutine()
	for deadline := time.Now().Add(10 * time.Second); after > base && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		after = runtime.NumGoroutine()
	}
	assert.LessOrEqual(t, after, base, "goroutines: %d before, %d after", base, after)
}

// TestCloseDuringRun closes the monitor while Run samples on another goroutine: Run
// must stop with ErrClosed and no NVML call may happen after Shutdown.
func TestCloseDuringRun(t *testing.T) {
	s := fakeDGX()
	var shut atomic.Bool
	s.ShutdownFunc = func() nvml.Return { shut.Store(true); return nvml.SUCCESS }
	for i := range s.Devices {
		d := device(s, i)
		inner := d.GetPowerUsageFunc
		d.GetPowerUsageFunc = func() (uint32, nvml.Return) {
			if shut.Load() {
				t.Error("NVML called after Shutdown")
			}
			return inner()
		}
	}
	m, err := monitor.Open(s)
	require.NoError(t, err)
	var n atomic.Int32
	done := make(chan error)
	go func() { done <- m.Run(context.Background(), 50*time.Microsecond, func(monitor.Sample) { n.Add(1) }) }()
	require.Eventually(t, func() bool { return n.Load() >= 2 }, 10*time.Second, time.Millisecond)
	require.NoError(t, m.Close())
	assert.ErrorIs(t, <-done, monitor.ErrClosed)
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
