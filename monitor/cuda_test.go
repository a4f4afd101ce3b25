package monitor_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/monitor"
)

// TestCUDAToNVML: CUDA indices map onto the 8-GPU mock's NVML devices as
// CUDA_VISIBLE_DEVICES says (unset: the same index; indices; UUIDs and their unique
// prefixes; enumeration stops at the first entry that names no GPU).
func TestCUDAToNVML(t *testing.T) {
	m, err := monitor.Open(fakeDGX())
	require.NoError(t, err)
	defer m.Close()
	devs := m.Devices()
	require.Len(t, devs, 8)
	uuid := func(i int) string { return devs[i].UUID }
	index := func(ds []monitor.DeviceInfo) []int {
		out := make([]int, len(ds))
		for i, d := range ds {
			out[i] = d.Index
		}
		return out
	}
	cases := []struct {
		name    string
		visible string
		set     bool
		cuda    []int
		want    []int
		err     string
	}{
		{"unset", "", false, []int{0, 1, 7}, []int{0, 1, 7}, ""},
		{"unset, past the end", "", false, []int{8}, nil, "cuda device 8 has no nvml device (NVML sees 8 GPUs)"},
		{"indices", "3,1", true, []int{0, 1}, []int{3, 1}, ""},
		{"uuid", uuid(5) + "," + uuid(2)[:12], true, []int{0, 1}, []int{5, 2}, ""},
		{"stops at a bad entry", "2,x,4", true, []int{0, 1}, nil, `makes 1 visible`},
		{"stops at a repeat", "2,2,4", true, []int{1}, nil, `makes 1 visible`},
		{"ambiguous prefix", "GPU-", true, []int{0}, nil, `makes 0 visible`},
		{"empty hides all", "", true, []int{0}, nil, `CUDA_VISIBLE_DEVICES="" makes 0 visible`},
		{"mig", "MIG-abc", true, []int{0}, nil, "makes 0 visible"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := monitor.CUDAToNVML(devs, tc.visible, tc.set, tc.cuda)
			if tc.err != "" {
				require.ErrorIs(t, err, monitor.ErrNoGPU)
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, index(got))
		})
	}
	t.Setenv(monitor.EnvVisibleDevices, "6")
	got, err := m.ForCUDA([]int{0})
	require.NoError(t, err)
	assert.Equal(t, uuid(6), got[0].UUID, "ForCUDA reads the process's CUDA_VISIBLE_DEVICES")
}
