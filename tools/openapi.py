"""Writes server/openapi.json, the OpenAPI 3.1 document of `grefine serve`:

    python3 tools/openapi.py > server/openapi.json   (GREFINE=bin/grefine to skip `go run`)

The Go test TestRoutesMatchOpenAPI checks that the router and the document list the same
operations; tools/pyclients.sh runs schemathesis against the served copy. The examples
embed tools/pyclients/small.png (the sample at 96x64) so schemathesis runs real inference.
"""
import base64
import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(ROOT, "tools", "pyclients", "small.png"), "rb") as f:
    B64 = base64.b64encode(f.read()).decode()
err = {"$ref": "#/components/responses/Error"}
v2err = {"$ref": "#/components/responses/V2Error"}
rid_hdr = {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}}
def errors(v2=False, codes=()):
    r = {}
    for c in codes:
        r[str(c)] = v2err if v2 else err
    r["default"] = v2err if v2 else err
    return r
def infer_op(refine):
    name = "refine" if refine else "assess"
    ok_content = {"application/json": {"schema": {"$ref": "#/components/schemas/" + ("Refinement" if refine else "Assessment")}},
                  "text/event-stream": {"schema": {"type": "string", "description": "Server-sent events: `progress` (an Event), then `result` (the JSON answer) or `error` (an ErrorBody with `code`)."}}}
    if refine:
        ok_content["image/png"] = {"schema": {"type": "string", "contentMediaType": "image/png"}}
        ok_content["image/jpeg"] = {"schema": {"type": "string", "contentMediaType": "image/jpeg"}}
    return {
        "operationId": name,
        "summary": ("Refine one image: assess, repair the defect mask (stage 1), polish (stage 2)" if refine else "Assess one image: quality scores, parts, defect mask"),
        "description": "The body is multipart/form-data (an `image` file part, a `prompt` field and parameters as fields) or JSON. `Accept` chooses the answer: JSON (default), `text/event-stream` (progress, then the result)" + (", `image/png` or `image/jpeg` (the refined image alone)." if refine else "."),
        "parameters": [{"$ref": "#/components/parameters/RequestId"}],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/InferRequest"},
                                 "example": {"image": B64, "prompt": "a red cat", "params": {"seed": 1, "steps1": 1, "steps2": 1}}},
            "multipart/form-data": {"schema": {"$ref": "#/components/schemas/InferForm"},
                                     "encoding": {"image": {"contentType": "image/png, image/jpeg, image/gif, application/octet-stream"}}}}},
        "responses": {"200": {"description": "The " + ("refinement" if refine else "assessment"), "headers": rid_hdr, "content": ok_content},
                      **errors(codes=(400, 401, 406, 413, 415, 429, 499, 503, 504))},
    }
# The parameters come from the one parameter table (pipeline.ParamTable) through
# `grefine params --json`: names, types, ranges and descriptions are written there only
# (server's TestOpenAPIParamsMatchTable checks this document against the table).
# $GREFINE names a built grefine; else `go run ./cmd/grefine`.
cmd = [os.environ["GREFINE"]] if os.environ.get("GREFINE") else ["go", "run", "./cmd/grefine"]
rows = json.loads(subprocess.run(cmd + ["params", "--json"], cwd=ROOT, check=True, capture_output=True, text=True).stdout)
params_props = {r["name"]: r["schema"] for r in rows}
# JSON null leaves a field at its default (encoding/json), so the JSON forms admit it.
params_json = {k: {**v, "type": [v["type"], "null"]} for k, v in params_props.items()}
model_param = {"name": "model", "in": "path", "required": True, "schema": {"type": "string", "enum": ["assess", "refine"]}}
doc = {
 "openapi": "3.1.0",
 "info": {"title": "grefine serve", "version": "1",
          "description": "G-Refine behind HTTP: the REST API (/v1), the KServe v2 Open Inference Protocol (/v2, with Triton's binary tensor data extension), Prometheus metrics and this document. With --auth-tokens every operation but health, metrics and this document needs `Authorization: Bearer <token>`. Error status codes come from the pipeline's one table: 400 bad input, 429 busy (with Retry-After), 499 cancelled, 503 unavailable or shutting down, 504 deadline passed while running, 500 internal; the HTTP layer adds 401, 404, 405, 406, 413 and 415."},
 "servers": [{"url": "http://127.0.0.1:8080"}],
 "components": {
  "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
  "headers": {"X-Request-Id": {"description": "The request's id: the client's X-Request-Id or a generated one", "schema": {"type": "string"}},
              "Retry-After": {"description": "Seconds to wait before retrying (429)", "schema": {"type": "integer"}}},
  "parameters": {"RequestId": {"name": "X-Request-Id", "in": "header", "required": False,
      "description": "The request's id (up to 128 printable ASCII characters without spaces; generated when absent or empty), echoed in the response and usable with /v1/requests/{id}.",
      "schema": {"type": "string", "maxLength": 128, "pattern": "^[!-~]*$"}}},
  "responses": {
   "Error": {"description": "An error", "headers": {**rid_hdr, "Retry-After": {"$ref": "#/components/headers/Retry-After"}},
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}},
   "V2Error": {"description": "An error in the protocol's shape", "headers": {"Retry-After": {"$ref": "#/components/headers/Retry-After"}},
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/V2Error"}}}}},
  "schemas": {
   "ErrorBody": {"type": "object", "required": ["error", "status"], "properties": {
       "error": {"type": "string"},
       "status": {"type": "string", "enum": ["input", "busy", "unavailable", "canceled", "internal", "request"],
                  "description": "The pipeline's status, or `request` for the HTTP layer's own errors"},
       "request_id": {"type": "string"}}},
   "V2Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
   "Params": {"type": "object", "additionalProperties": False, "properties": params_json,
              "description": "Per-request settings; absent fields keep the server's defaults (GET /v1/info, defaults)."},
   "InferRequest": {"type": "object", "required": ["image"], "additionalProperties": False, "properties": {
       "image": {"type": "string", "contentEncoding": "base64", "description": "Base64 (standard) of a PNG, JPEG or GIF"},
       "prompt": {"type": ["string", "null"], "description": "null or absent: no prompt (alignment skipped)"},
       "params": {"anyOf": [{"$ref": "#/components/schemas/Params"}, {"type": "null"}], "description": "null or absent: the defaults"}}},
   "InferForm": {"type": "object", "required": ["image"], "properties": {
       "image": {"type": "string", "contentMediaType": "application/octet-stream"},
       "prompt": {"type": "string"}, **params_props}},
   "Event": {"type": "object", "required": ["id", "stage"], "properties": {
       "id": {"type": "string"}, "stage": {"type": "string", "enum": ["queued", "assess", "stage1", "stage2"]},
       "step": {"type": "integer"}, "total": {"type": "integer"}, "position": {"type": "integer"}}},
   "Assessment": {"type": "object", "required": ["width", "height", "p", "q", "parts", "request_id", "input", "params", "setup"], "properties": {
       "width": {"type": "integer"}, "height": {"type": "integer"},
       "p": {"type": "number"}, "a": {"type": ["number", "null"]}, "q": {"type": "number"},
       "perceptual": {"type": "object", "additionalProperties": {"type": "number"}},
       "parts": {"type": ["array", "null"], "items": {"type": "object"}},
       "mask_fraction": {"type": "number"}, "timings_ms": {"type": "object", "additionalProperties": {"type": "number"}},
       "request_id": {"type": "string"},
       "input": {"type": "object", "required": ["width", "height", "prompt", "pixel_sha256"]},
       "params": {"$ref": "#/components/schemas/Params"},
       "setup": {"type": "object"}}},
   "Refinement": {"allOf": [{"$ref": "#/components/schemas/Assessment"}, {"type": "object", "required": ["refine", "image", "image_media_type", "total_ms"], "properties": {
       "refine": {"type": "object", "properties": {"stage1": {"type": "object"}, "stage2": {"type": "object"}, "mask_fraction": {"type": "number"}}},
       "image": {"type": "string", "contentEncoding": "base64", "description": "The refined image, base64 PNG"},
       "image_media_type": {"const": "image/png"},
       "total_ms": {"type": "number"}}}]},
   "RequestState": {"type": "object", "required": ["id", "state"], "properties": {
       "id": {"type": "string"}, "state": {"type": "string", "enum": ["admitted", "queued", "running"], "description": "admitted: its place taken, its image not decoded yet; queued: waiting for a slot (position); running: stage and step"},
       "position": {"type": "integer"}, "stage": {"type": "string"}, "step": {"type": "integer"}, "total": {"type": "integer"}}},
   "Info": {"type": "object", "required": ["version", "model_set", "backend", "slots", "refine", "defaults"]},
   "V2Tensor": {"type": "object", "required": ["name", "datatype", "shape"], "properties": {
       "name": {"type": "string"}, "datatype": {"type": "string"},
       "shape": {"type": "array", "items": {"type": "integer"}},
       "parameters": {"type": "object"}, "data": {"type": "array"}}},
   "V2InferRequest": {"type": "object", "required": ["inputs"], "additionalProperties": False, "properties": {
       "id": {"type": "string"},
       "parameters": {"type": "object", "description": "Params' fields, plus the protocol's binary_data_output (and Triton's sequence/priority/timeout keys, ignored)"},
       "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/V2Tensor"},
                  "description": "image: BYTES [1] (an encoded PNG/JPEG/GIF; base64 in JSON data) or UINT8 [H, W, 3]; prompt: BYTES [1]"},
       "outputs": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}}}}}},
   "V2InferResponse": {"type": "object", "required": ["model_name", "model_version", "id", "outputs"], "properties": {
       "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
       "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/V2Tensor"}}}},
   "V2TensorMeta": {"type": "object", "required": ["name", "datatype", "shape"], "properties": {
       "name": {"type": "string"}, "datatype": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}}}},
   "V2ModelMetadata": {"type": "object", "required": ["name", "versions", "platform", "inputs", "outputs"], "properties": {
       "name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}}, "platform": {"type": "string"},
       "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/V2TensorMeta"}},
       "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/V2TensorMeta"}},
       "parameters": {"type": "object", "description": "grefine's extension: params (the parameter table rows this model takes: names, ranges, defaults), work_limits, image_limits, min_side, max_prompt_bytes, decode_memory_bytes"}}},
   "V2ConfigTensor": {"type": "object", "required": ["name", "data_type", "dims"], "properties": {
       "name": {"type": "string"}, "data_type": {"type": "string"}, "dims": {"type": "array", "items": {"type": "integer"}}, "optional": {"type": "boolean"}}},
   "V2ModelConfig": {"type": "object", "required": ["name", "backend", "max_batch_size", "input", "output", "instance_group"], "properties": {
       "name": {"type": "string"}, "platform": {"type": "string"}, "backend": {"type": "string"}, "max_batch_size": {"type": "integer"},
       "input": {"type": "array", "items": {"$ref": "#/components/schemas/V2ConfigTensor"}},
       "output": {"type": "array", "items": {"$ref": "#/components/schemas/V2ConfigTensor"}},
       "instance_group": {"type": "array", "items": {"type": "object"}},
       "parameters": {"type": "object", "additionalProperties": {"type": "object", "properties": {"string_value": {"type": "string"}}}}}},
   "V2ServerMetadata": {"type": "object", "required": ["name", "version", "extensions"], "properties": {
       "name": {"type": "string"}, "version": {"type": "string"}, "extensions": {"type": "array", "items": {"type": "string"}}}},
  }},
 "security": [{"bearer": []}, {}],
 "paths": {
  "/v1/assess": {"post": infer_op(False)},
  "/v1/refine": {"post": infer_op(True)},
  "/v1/info": {"get": {"operationId": "info", "summary": "What the server loaded: model set, backend, slots, limits, default parameters",
      "responses": {"200": {"description": "Pipeline info", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Info"}}}}, **errors(codes=(401,))}}},
  "/v1/requests/{id}": {
      "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
      "get": {"operationId": "requestState", "summary": "The state of a request in flight: queued (with position) or running (stage and step). Only the token that made the request finds it (404 for any other).",
          "responses": {"200": {"description": "Its state", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RequestState"}}}}, **errors(codes=(401, 404))}},
      "delete": {"operationId": "requestCancel", "summary": "Cancel a request in flight (it ends with 499 within one denoising step). Only the token that made the request can (404 for any other).",
          "responses": {"202": {"description": "Cancellation under way", "content": {"application/json": {"schema": {"type": "object", "required": ["id", "state"], "properties": {"id": {"type": "string"}, "state": {"const": "cancelling"}}}}}}, **errors(codes=(401, 404))}}},
  "/v2": {"get": {"operationId": "v2ServerMetadata", "summary": "KServe v2 server metadata",
      "responses": {"200": {"description": "Server metadata", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/V2ServerMetadata"}}}}, **errors(True, (401,))}}},
  "/v2/health/live": {"get": {"operationId": "v2Live", "summary": "Liveness (200 while the process serves)", "security": [{}],
      "responses": {"200": {"description": "Live"}, **errors(True)}}},
  "/v2/health/ready": {"get": {"operationId": "v2Ready", "summary": "Readiness (200; 503 once draining)", "security": [{}],
      "responses": {"200": {"description": "Ready"}, **errors(True, (503,))}}},
  "/v2/models/{model}": {"get": {"operationId": "v2ModelMetadata", "summary": "KServe v2 model metadata", "parameters": [model_param],
      "responses": {"200": {"description": "Model metadata", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/V2ModelMetadata"}}}}, **errors(True, (401, 404))}}},
  "/v2/models/{model}/ready": {"get": {"operationId": "v2ModelReady", "summary": "Model readiness", "parameters": [model_param],
      "responses": {"200": {"description": "Ready"}, **errors(True, (401, 404, 503))}}},
  "/v2/models/{model}/config": {"get": {"operationId": "v2ModelConfig", "summary": "Triton's model configuration extension: the model's configuration (config.pbtxt as JSON), read by perf_analyzer and tritonclient", "parameters": [model_param],
      "responses": {"200": {"description": "Model configuration", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/V2ModelConfig"}}}}, **errors(True, (401, 404))}}},
  "/v2/models/{model}/infer": {"post": {"operationId": "v2Infer", "summary": "KServe v2 inference: inputs image and prompt; outputs p, a, q (FP32 [1]), report (BYTES [1], JSON) and, for refine, image (BYTES [1], PNG)",
      "description": "With the binary tensor data extension the body is the JSON header (its length in Inference-Header-Content-Length) followed by the binary tensors; the answer then has the same layout.",
      "parameters": [model_param, {"$ref": "#/components/parameters/RequestId"},
                     {"name": "Inference-Header-Content-Length", "in": "header", "required": False, "schema": {"type": "integer", "minimum": 0}}],
      "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/V2InferRequest"},
          "example": {"id": "example-1", "parameters": {"seed": 1, "steps1": 1, "steps2": 1}, "inputs": [
              {"name": "image", "datatype": "BYTES", "shape": [1], "data": [B64]},
              {"name": "prompt", "datatype": "BYTES", "shape": [1], "data": ["a red cat"]}]}},
                                                    "application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}},
      "responses": {"200": {"description": "The outputs", "headers": rid_hdr, "content": {
          "application/json": {"schema": {"$ref": "#/components/schemas/V2InferResponse"}},
          "application/octet-stream": {"schema": {"type": "string"}}}}, **errors(True, (400, 401, 404, 413, 429, 499, 503, 504))}}},
  "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus metrics (Triton's names where they fit)", "security": [{}],
      "responses": {"200": {"description": "Text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
  "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document", "security": [{}],
      "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
 }}
print(json.dumps(doc, indent=1))
