package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/server"
)

// TestV2ConfigMatchesMetadata: GET /v2/models/{model}/config (Triton's model
// configuration extension) lists the tensors of the model metadata, in Triton's
// config.pbtxt terms (BYTES is TYPE_STRING, shape is dims), with max_batch_size 0, the
// prompt optional and one CPU instance whose slots are a parameter.
func TestV2ConfigMatchesMetadata(t *testing.T) {
	_, ts, _ := newServer(t, shared(t), server.Config{})
	types := map[string]string{"BYTES": "TYPE_STRING", "FP32": "TYPE_FP32"}
	type tensor struct {
		Name     string  `json:"name"`
		Datatype string  `json:"datatype"`  // metadata
		DataType string  `json:"data_type"` // configuration
		Shape    []int64 `json:"shape"`
		Dims     []int64 `json:"dims"`
		Optional bool    `json:"optional"`
	}
	for _, m := range []string{"assess", "refine"} {
		resp, b := do(t, "GET", ts.URL+"/v2/models/"+m, nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var meta struct{ Inputs, Outputs []tensor }
		require.NoError(t, json.Unmarshal(b, &meta))
		resp, b = do(t, "GET", ts.URL+"/v2/models/"+m+"/config", nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		var cfg struct {
			Name          string
			Backend       string
			MaxBatchSize  *int `json:"max_batch_size"`
			Input, Output []tensor
			InstanceGroup []map[string]any             `json:"instance_group"`
			Parameters    map[string]map[string]string `json:"parameters"`
		}
		require.NoError(t, json.Unmarshal(b, &cfg))
		assert.Equal(t, m, cfg.Name)
		assert.Equal(t, "grefine", cfg.Backend)
		require.NotNil(t, cfg.MaxBatchSize, "max_batch_size is always present (perf_analyzer reads it)")
		assert.Equal(t, 0, *cfg.MaxBatchSize)
		for _, pair := range []struct{ meta, cfg []tensor }{{meta.Inputs, cfg.Input}, {meta.Outputs, cfg.Output}} {
			require.Len(t, pair.cfg, len(pair.meta))
			for i, mt := range pair.meta {
				c := pair.cfg[i]
				assert.Equal(t, mt.Name, c.Name)
				assert.Equal(t, types[mt.Datatype], c.DataType, mt.Name)
				assert.Equal(t, mt.Shape, c.Dims, mt.Name)
				assert.Equal(t, mt.Name == "prompt", c.Optional, mt.Name)
			}
		}
		require.Len(t, cfg.InstanceGroup, 1)
		assert.Equal(t, "KIND_CPU", cfg.InstanceGroup[0]["kind"])
		assert.Equal(t, "2", cfg.Parameters["slots"]["string_value"])
		assert.Equal(t, "tiny", cfg.Parameters["model_set"]["string_value"])
	}
	resp, b := do(t, "GET", ts.URL+"/v2/models/nope/config", nil, nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, map[string]any{"error": `unknown model "nope" (assess or refine)`}, errorOf(t, b))
}

func TestV2ConfigAssessOnly(t *testing.T) {
	_, ts, _ := newServer(t, openPipeline(t, pipeline.Config{AssessOnly: true}), server.Config{})
	resp, _ := do(t, "GET", ts.URL+"/v2/models/assess/config", nil, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, b := do(t, "GET", ts.URL+"/v2/models/refine/config", nil, nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Contains(t, errorOf(t, b)["error"], "assess-only")
}
