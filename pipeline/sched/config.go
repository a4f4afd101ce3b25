package sched

import (
	"encoding/json"
	"fmt"
)

// Scheduler class names, as diffusers' "_class_name" spells them.
const (
	ClassEuler = "EulerDiscreteScheduler"
	ClassUniPC = "UniPCMultistepScheduler"
	ClassDDIM  = "DDIMScheduler"
)

// Config is a diffusers scheduler_config.json: the union of the fields of the three
// supported classes, with JSON names identical to diffusers'. Fields a class does not
// have are ignored by it, as diffusers' from_config ignores them.
type Config struct {
	// Class is the scheduler class ("_class_name"); ParseConfig may override it (the
	// from_config conversion: PASD builds UniPC from SD-1.5's PNDM config).
	Class string `json:"_class_name"`

	NumTrainTimesteps int       `json:"num_train_timesteps"`
	BetaStart         float64   `json:"beta_start"`
	BetaEnd           float64   `json:"beta_end"`
	BetaSchedule      string    `json:"beta_schedule"`
	TrainedBetas      []float64 `json:"trained_betas"`
	PredictionType    string    `json:"prediction_type"`
	TimestepSpacing   string    `json:"timestep_spacing"`
	StepsOffset       int       `json:"steps_offset"`
	// RescaleBetasZeroSNR is not implemented (ErrUnsupported when true).
	RescaleBetasZeroSNR bool `json:"rescale_betas_zero_snr"`
	// FinalSigmasType: "zero" or "sigma_min" (Euler, UniPC).
	FinalSigmasType string `json:"final_sigmas_type"`
	// The alternative sigma schedules are not implemented (ErrUnsupported when true).
	UseKarrasSigmas      bool `json:"use_karras_sigmas"`
	UseExponentialSigmas bool `json:"use_exponential_sigmas"`
	UseBetaSigmas        bool `json:"use_beta_sigmas"`

	// Euler only.
	InterpolationType string   `json:"interpolation_type"`
	TimestepType      string   `json:"timestep_type"`
	SigmaMin          *float64 `json:"sigma_min"`
	SigmaMax          *float64 `json:"sigma_max"`

	// UniPC only.
	SolverOrder      int             `json:"solver_order"`
	PredictX0        bool            `json:"predict_x0"`
	SolverType       string          `json:"solver_type"`
	LowerOrderFinal  bool            `json:"lower_order_final"`
	DisableCorrector []int           `json:"disable_corrector"`
	SolverP          json.RawMessage `json:"solver_p"`

	// UniPC and DDIM. Thresholding is not implemented (ErrUnsupported when true).
	Thresholding             bool    `json:"thresholding"`
	DynamicThresholdingRatio float64 `json:"dynamic_thresholding_ratio"`
	SampleMaxValue           float64 `json:"sample_max_value"`

	// DDIM only.
	ClipSample      bool    `json:"clip_sample"`
	ClipSampleRange float64 `json:"clip_sample_range"`
	SetAlphaToOne   bool    `json:"set_alpha_to_one"`
}

// DefaultConfig returns the __init__ defaults of a diffusers 0.31.0 scheduler class.
func DefaultConfig(class string) (Config, error) {
	c := Config{
		Class:                    class,
		NumTrainTimesteps:        1000,
		BetaStart:                0.0001,
		BetaEnd:                  0.02,
		BetaSchedule:             "linear",
		PredictionType:           "epsilon",
		FinalSigmasType:          "zero",
		DynamicThresholdingRatio: 0.995,
		SampleMaxValue:           1,
	}
	switch class {
	case ClassEuler:
		c.TimestepSpacing = "linspace"
		c.InterpolationType = "linear"
		c.TimestepType = "discrete"
	case ClassUniPC:
		c.TimestepSpacing = "linspace"
		c.SolverOrder = 2
		c.PredictX0 = true
		c.SolverType = "bh2"
		c.LowerOrderFinal = true
		c.DisableCorrector = []int{}
	case ClassDDIM:
		c.TimestepSpacing = "leading"
		c.ClipSample = true
		c.ClipSampleRange = 1
		c.SetAlphaToOne = true
	default:
		return Config{}, fmt.Errorf("%w: scheduler class %q (want %s, %s or %s)",
			ErrUnsupported, class, ClassEuler, ClassUniPC, ClassDDIM)
	}
	return c, nil
}

// ParseConfig reads a scheduler_config.json the way diffusers' Class.from_config(dict)
// does: the class's defaults, overwritten by every field the JSON carries (unknown fields
// such as PNDM's skip_prk_steps are ignored; JSON null keeps the default). class names the
// class to build; "" takes it from the JSON's "_class_name".
func ParseConfig(class string, data []byte) (Config, error) {
	if class == "" {
		var head struct {
			Class string `json:"_class_name"`
		}
		if err := json.Unmarshal(data, &head); err != nil {
			return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		if head.Class == "" {
			return Config{}, fmt.Errorf("%w: no _class_name and no class given", ErrConfig)
		}
		class = head.Class
	}
	c, err := DefaultConfig(class)
	if err != nil {
		return Config{}, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	c.Class = class
	return c, nil
}

// New builds the scheduler cfg.Class names, with no timesteps set.
func New(cfg Config) (Scheduler, error) {
	switch cfg.Class {
	case ClassEuler:
		return NewEuler(cfg)
	case ClassUniPC:
		return NewUniPC(cfg)
	case ClassDDIM:
		return NewDDIM(cfg)
	}
	return nil, fmt.Errorf("%w: scheduler class %q", ErrUnsupported, cfg.Class)
}

// NewFromJSON is ParseConfig followed by New.
func NewFromJSON(class string, data []byte) (Scheduler, error) {
	cfg, err := ParseConfig(class, data)
	if err != nil {
		return nil, err
	}
	return New(cfg)
}

// validateCommon checks the fields every class shares.
func (c Config) validateCommon() error {
	switch {
	case c.NumTrainTimesteps < 2:
		return fmt.Errorf("%w: num_train_timesteps %d (want >= 2)", ErrConfig, c.NumTrainTimesteps)
	case c.PredictionType != "epsilon":
		return fmt.Errorf("%w: prediction_type %q (only epsilon)", ErrUnsupported, c.PredictionType)
	case c.RescaleBetasZeroSNR:
		return fmt.Errorf("%w: rescale_betas_zero_snr", ErrUnsupported)
	case c.UseKarrasSigmas || c.UseExponentialSigmas || c.UseBetaSigmas:
		return fmt.Errorf("%w: karras/exponential/beta sigmas", ErrUnsupported)
	case c.Thresholding:
		return fmt.Errorf("%w: thresholding", ErrUnsupported)
	}
	switch c.TimestepSpacing {
	case "linspace", "leading", "trailing":
	default:
		return fmt.Errorf("%w: timestep_spacing %q (want linspace, leading or trailing)", ErrConfig, c.TimestepSpacing)
	}
	return nil
}

// finalSigma returns the sigma appended after the last timestep (final_sigmas_type).
func (c Config) finalSigma(trainSigmas []float32) (float32, error) {
	switch c.FinalSigmasType {
	case "zero":
		return 0, nil
	case "sigma_min":
		return trainSigmas[0], nil
	}
	return 0, fmt.Errorf("%w: final_sigmas_type %q (want zero or sigma_min)", ErrConfig, c.FinalSigmasType)
}
