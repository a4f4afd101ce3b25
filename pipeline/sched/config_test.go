package sched

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// SD-1.5's scheduler_config.json (a PNDM config), which PASD turns into UniPC.
const sd15JSON = `{"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
 "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
 "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1, "trained_betas": null,
 "clip_sample": false}`

func TestParseConfigFromConfigSemantics(t *testing.T) {
	u, err := ParseConfig(ClassUniPC, []byte(sd15JSON))
	require.NoError(t, err)
	assert.Equal(t, ClassUniPC, u.Class)
	assert.Equal(t, "linspace", u.TimestepSpacing, "UniPC default survives: SD-1.5 has no timestep_spacing")
	assert.Equal(t, 1, u.StepsOffset)
	assert.Equal(t, "scaled_linear", u.BetaSchedule)
	assert.Equal(t, 2, u.SolverOrder)
	assert.Equal(t, "bh2", u.SolverType)
	assert.True(t, u.PredictX0)
	assert.True(t, u.LowerOrderFinal)
	assert.Nil(t, u.TrainedBetas, "JSON null keeps the default")

	d, err := ParseConfig(ClassDDIM, []byte(sd15JSON))
	require.NoError(t, err)
	assert.Equal(t, "leading", d.TimestepSpacing, "DDIM's own default")
	assert.False(t, d.ClipSample)
	assert.False(t, d.SetAlphaToOne)

	_, err = ParseConfig("", []byte(sd15JSON))
	assert.ErrorIs(t, err, ErrUnsupported, "PNDM itself is not implemented")

	e, err := ParseConfig("", []byte(`{"_class_name": "EulerDiscreteScheduler", "timestep_spacing": "leading"}`))
	require.NoError(t, err)
	assert.Equal(t, "linear", e.BetaSchedule, "Euler default")
	assert.Equal(t, "leading", e.TimestepSpacing)
}

func TestConfigErrors(t *testing.T) {
	mk := func(class string, mod func(*Config)) Config {
		c, err := DefaultConfig(class)
		require.NoError(t, err)
		mod(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"unknown class", Config{Class: "LMSDiscreteScheduler"}, ErrUnsupported},
		{"spacing", mk(ClassEuler, func(c *Config) { c.TimestepSpacing = "even" }), ErrConfig},
		{"beta schedule", mk(ClassDDIM, func(c *Config) { c.BetaSchedule = "sigmoid" }), ErrConfig},
		{"trained betas length", mk(ClassDDIM, func(c *Config) { c.TrainedBetas = []float64{0.1} }), ErrConfig},
		{"v prediction", mk(ClassEuler, func(c *Config) { c.PredictionType = "v_prediction" }), ErrUnsupported},
		{"karras", mk(ClassEuler, func(c *Config) { c.UseKarrasSigmas = true }), ErrUnsupported},
		{"zero snr", mk(ClassDDIM, func(c *Config) { c.RescaleBetasZeroSNR = true }), ErrUnsupported},
		{"thresholding", mk(ClassUniPC, func(c *Config) { c.Thresholding = true }), ErrUnsupported},
		{"log_linear", mk(ClassEuler, func(c *Config) { c.InterpolationType = "log_linear" }), ErrUnsupported},
		{"final sigmas", mk(ClassEuler, func(c *Config) { c.FinalSigmasType = "one" }), ErrConfig},
		{"solver type", mk(ClassUniPC, func(c *Config) { c.SolverType = "bh3" }), ErrConfig},
		{"solver order", mk(ClassUniPC, func(c *Config) { c.SolverOrder = 0 }), ErrConfig},
		{"solver_p", mk(ClassUniPC, func(c *Config) { c.SolverP = []byte(`{"a":1}`) }), ErrUnsupported},
		{"predict eps zero (diffusers NaN)", mk(ClassUniPC, func(c *Config) { c.PredictX0 = false }), ErrUnsupported},
		{"bh1 zero (diffusers NaN)", mk(ClassUniPC, func(c *Config) { c.SolverType = "bh1" }), ErrUnsupported},
		{"no lower_order_final (diffusers inf)", mk(ClassUniPC, func(c *Config) { c.LowerOrderFinal = false }), ErrUnsupported},
		{"train steps", mk(ClassDDIM, func(c *Config) { c.NumTrainTimesteps = 1 }), ErrConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			assert.ErrorIs(t, err, tc.want)
		})
	}
	_, err := ParseConfig(ClassEuler, []byte(`{"beta_start": "x"}`))
	assert.ErrorIs(t, err, ErrConfig)
	_, err = ParseConfig("", []byte(`{}`))
	assert.ErrorIs(t, err, ErrConfig)
}

func TestSolverTypeAliases(t *testing.T) {
	c, err := DefaultConfig(ClassUniPC)
	require.NoError(t, err)
	c.SolverType = "midpoint"
	u, err := NewUniPC(c)
	require.NoError(t, err)
	assert.Equal(t, "bh2", u.Config().SolverType, "diffusers registers bh2 for midpoint/heun/logrho")
}

func TestStepIndexErrors(t *testing.T) {
	for _, class := range []string{ClassEuler, ClassUniPC, ClassDDIM} {
		t.Run(class, func(t *testing.T) {
			c, err := DefaultConfig(class)
			require.NoError(t, err)
			s, err := New(c)
			require.NoError(t, err)
			x := make([]float32, 3)
			assert.ErrorIs(t, s.Step(x, x, 0), ErrStep, "before SetTimesteps")
			_, err = s.Coeffs(0)
			assert.ErrorIs(t, err, ErrStep)
			assert.ErrorIs(t, s.SetTimesteps(0), ErrStep)
			require.NoError(t, s.SetTimesteps(5))
			assert.ErrorIs(t, s.Step(x, x, 5), ErrStep)
			assert.ErrorIs(t, s.Step(x, x, -1), ErrStep)
			assert.ErrorIs(t, s.Step(x[:2], x, 0), ErrSize)
			assert.ErrorIs(t, s.ScaleModelInput(x, 5), ErrStep)
			assert.ErrorIs(t, s.AddNoise(x, x, x, 6), ErrStep)
			assert.NoError(t, s.AddNoise(x, x, x, 5), "index N is the clean original")
			a, b, err := s.NoiseCoeffs(5)
			require.NoError(t, err)
			assert.Equal(t, [2]float64{1, 0}, [2]float64{a, b})
			assert.ErrorIs(t, s.SetBeginIndex(5), ErrStep)
		})
	}
}
