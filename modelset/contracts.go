package modelset

import "github.com/grefine/grefine/engine"

// Port is one tensor a contract requires: name, dtype and rank (sizes are free, so tiny
// sets with smaller hidden sizes satisfy the same contract).
type Port struct {
	Name  string
	DType engine.DType
	Rank  int
}

// Contract lists the tensors an engine must have.
type Contract struct {
	Inputs, Outputs []Port
}

// Contracts are the engine contracts of DESIGN §2, keyed by engine name. An engine the
// manifest lists must meet its contract; an engine it does not list is simply absent
// (the pipelines say which ones they need).
var Contracts = map[string]Contract{
	"clip_surgery": {
		Inputs:  []Port{{"pixel_values", engine.Float32, 4}},
		Outputs: []Port{{"tokens", engine.Float32, 3}},
	},
	"clip_text": {
		Inputs:  []Port{{"input_ids", engine.Int32, 2}},
		Outputs: []Port{{"text_embeds", engine.Float32, 2}},
	},
	// clip_text_kv is optional (an extension of DESIGN §2): clip_text fed the tokens
	// after a cached prefix, with the prefix's keys and values as inputs and the call's
	// own as outputs (tools/export/clip_engines.py ClipTextKV; pipeline/aq uses it when
	// the set has it and clip_text otherwise).
	"clip_text_kv": {
		Inputs: []Port{{"input_ids", engine.Int32, 2}, {"past_keys", engine.Float32, 5},
			{"past_values", engine.Float32, 5}, {"past_index", engine.Int32, 1}, {"past_length", engine.Int32, 1}},
		Outputs: []Port{{"text_embeds", engine.Float32, 2}, {"present_keys", engine.Float32, 5}, {"present_values", engine.Float32, 5}},
	},
	"sdxl_text_l": {
		Inputs:  []Port{{"input_ids", engine.Int32, 2}},
		Outputs: []Port{{"hidden_states", engine.Float32, 3}},
	},
	"sdxl_text_g": {
		Inputs:  []Port{{"input_ids", engine.Int32, 2}},
		Outputs: []Port{{"hidden_states", engine.Float32, 3}, {"text_embeds", engine.Float32, 2}},
	},
	"sdxl_unet": {
		Inputs: []Port{{"sample", engine.Float32, 4}, {"timestep", engine.Float32, 1},
			{"encoder_hidden_states", engine.Float32, 3}, {"text_embeds", engine.Float32, 2}, {"time_ids", engine.Float32, 2}},
		Outputs: []Port{{"noise_pred", engine.Float32, 4}},
	},
	"sdxl_vae_encoder": {
		Inputs:  []Port{{"images", engine.Float32, 4}},
		Outputs: []Port{{"latent_mean", engine.Float32, 4}},
	},
	"sdxl_vae_decoder": {
		Inputs:  []Port{{"latent", engine.Float32, 4}},
		Outputs: []Port{{"images", engine.Float32, 4}},
	},
	"pasd_text": {
		Inputs:  []Port{{"input_ids", engine.Int32, 2}},
		Outputs: []Port{{"hidden_states", engine.Float32, 3}},
	},
	"pasd_unet": {
		Inputs: []Port{{"sample", engine.Float32, 4}, {"timestep", engine.Float32, 1},
			{"encoder_hidden_states", engine.Float32, 3}, {"control", engine.Float32, 4}},
		Outputs: []Port{{"noise_pred", engine.Float32, 4}},
	},
	"pasd_vae_encoder": {
		Inputs:  []Port{{"images", engine.Float32, 4}},
		Outputs: []Port{{"latent_mean", engine.Float32, 4}},
	},
	"pasd_vae_decoder": {
		Inputs:  []Port{{"latent", engine.Float32, 4}},
		Outputs: []Port{{"images", engine.Float32, 4}},
	},
}
