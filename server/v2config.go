package server

import (
	"net/http"
	"strconv"
)

// Triton's model configuration extension: GET /v2/models/{model}/config answers the
// model's configuration in Triton's JSON form (config.pbtxt as JSON), which Triton's tools
// read before they send a request: perf_analyzer stops without it, tritonclient's
// get_model_config returns it. The tensors are those of the model metadata
// (handleV2Model); TestV2ConfigMatchesMetadata keeps the two in step.

// v2ConfigTensor is an input or output of a model configuration.
type v2ConfigTensor struct {
	Name     string  `json:"name"`
	DataType string  `json:"data_type"`
	Dims     []int64 `json:"dims"`
	Optional bool    `json:"optional,omitempty"`
}

// v2Config is the part of Triton's ModelConfig message that describes a grefine model.
type v2Config struct {
	Name          string                       `json:"name"`
	Platform      string                       `json:"platform"`
	Backend       string                       `json:"backend"`
	MaxBatchSize  int                          `json:"max_batch_size"`
	Input         []v2ConfigTensor             `json:"input"`
	Output        []v2ConfigTensor             `json:"output"`
	InstanceGroup []map[string]any             `json:"instance_group"`
	Parameters    map[string]map[string]string `json:"parameters"`
}

// handleV2Config serves GET /v2/models/{model}/config: max_batch_size 0 (one image per
// request), inputs image and prompt (TYPE_STRING [1], prompt optional), the outputs of the
// metadata, one instance (the pipeline: KIND_GPU with device cuda) whose slots are a
// parameter.
func (s *Server) handleV2Config(w http.ResponseWriter, r *http.Request) {
	refine, err := s.v2Model(r)
	if err != nil {
		writeError(w, r, err, true)
		return
	}
	t := func(name, dt string) v2ConfigTensor {
		return v2ConfigTensor{Name: name, DataType: dt, Dims: []int64{1}}
	}
	out := []v2ConfigTensor{t("p", "TYPE_FP32"), t("a", "TYPE_FP32"), t("q", "TYPE_FP32"), t("report", "TYPE_STRING")}
	if refine {
		out = append(out, t("image", "TYPE_STRING"))
	}
	prompt := t("prompt", "TYPE_STRING")
	prompt.Optional = true
	info := s.p.Info()
	kind := "KIND_CPU"
	if info.Device == "cuda" {
		kind = "KIND_GPU"
	}
	writeJSON(w, http.StatusOK, v2Config{
		Name: model(refine), Platform: "grefine", Backend: "grefine", MaxBatchSize: 0,
		Input:         []v2ConfigTensor{t("image", "TYPE_STRING"), prompt},
		Output:        out,
		InstanceGroup: []map[string]any{{"name": model(refine) + "_0", "kind": kind, "count": 1}},
		Parameters: map[string]map[string]string{
			"slots":     {"string_value": strconv.Itoa(info.Slots)},
			"model_set": {"string_value": info.ModelSet},
			"backend":   {"string_value": info.Backend},
			"device":    {"string_value": info.Device},
		},
	})
}
