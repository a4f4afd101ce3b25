package server

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/pipeline"
)

// TestRoutesMatchOpenAPI: every route of the router is an operation of openapi.json
// and every operation is a route, with the same open (no token) routes.
func TestRoutesMatchOpenAPI(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry(), nil, nil, zerolog.Nop())
	require.NoError(t, err)
	s := &Server{metrics: m}
	var doc struct {
		OpenAPI  string                                `json:"openapi"`
		Security []map[string][]string                 `json:"security"`
		Paths    map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(openAPI, &doc))
	assert.Equal(t, "3.1.0", doc.OpenAPI)
	var inDoc, inRouter, openDoc, openRouter []string
	methods := map[string]bool{"get": true, "put": true, "post": true, "delete": true, "patch": true, "head": true, "options": true}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			if !methods[method] {
				continue
			}
			key := strings.ToUpper(method) + " " + path
			inDoc = append(inDoc, key)
			var op struct {
				Security *[]map[string][]string `json:"security"`
			}
			require.NoError(t, json.Unmarshal(raw, &op))
			if op.Security != nil && len(*op.Security) == 1 && len((*op.Security)[0]) == 0 {
				openDoc = append(openDoc, key)
			}
		}
	}
	for _, rt := range s.routeTable() {
		key := rt.method + " " + rt.path
		inRouter = append(inRouter, key)
		if rt.open {
			openRouter = append(openRouter, key)
		}
	}
	for _, l := range [][]string{inDoc, inRouter, openDoc, openRouter} {
		sort.Strings(l)
	}
	assert.Equal(t, inRouter, inDoc, "router routes vs OpenAPI operations")
	assert.Equal(t, openRouter, openDoc, "routes without a token vs operations with security [{}]")
}

// TestOpenAPIParamsMatchTable: the parameters of openapi.json (the JSON Params object
// and the multipart form's fields) are exactly the parameter table's rows, each with
// the schema the table gives (type, range, multipleOf, description): the document is
// generated from the table (tools/openapi.py reads `grefine params --json`) and this
// keeps it from going stale.
func TestOpenAPIParamsMatchTable(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(openAPI, &doc))
	params := doc.Components.Schemas["Params"].Properties
	form := doc.Components.Schemas["InferForm"].Properties
	require.Len(t, params, len(pipeline.ParamTable()), "one Params property per table row")
	for _, r := range pipeline.ParamTable() {
		b, err := json.Marshal(r.Schema())
		require.NoError(t, err)
		var want map[string]any
		require.NoError(t, json.Unmarshal(b, &want))
		assert.Equal(t, want, form[r.Name], "multipart field %s", r.Name)
		want["type"] = []any{want["type"], "null"} // JSON null keeps the default
		assert.Equal(t, want, params[r.Name], "params.%s", r.Name)
	}
	delete(form, "image")
	delete(form, "prompt")
	assert.Len(t, form, len(pipeline.ParamTable()), "the form's fields are the image, the prompt and the table's rows")
}
