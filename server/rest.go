package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/grefine/grefine/pipeline"
)

// The REST API (/v1).

// Media types of the inference responses.
const (
	mediaJSON = "application/json"
	mediaSSE  = "text/event-stream"
	mediaPNG  = "image/png"
	mediaJPEG = "image/jpeg"
)

// restRequest is the JSON body of POST /v1/assess and /v1/refine.
type restRequest struct {
	Image  string          `json:"image"` // base64 (standard encoding) of a PNG, JPEG or GIF
	Prompt string          `json:"prompt"`
	Params json.RawMessage `json:"params"`
}

// refineResponse is refine's JSON answer: the report with the image as base64 PNG.
type refineResponse struct {
	*pipeline.Refinement
	Image     string `json:"image"`
	MediaType string `json:"image_media_type"`
}

// handleInfer serves POST /v1/assess (refine false) and /v1/refine.
func (s *Server) handleInfer(refine bool) http.HandlerFunc {
	offers := []string{mediaJSON, mediaSSE}
	if refine {
		offers = append(offers, mediaPNG, mediaJPEG)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		media := negotiate(r.Header.Get("Accept"), offers)
		if media == "" {
			writeError(w, r, httpErrorf(http.StatusNotAcceptable, "Accept %q: this endpoint answers %s", r.Header.Get("Accept"), strings.Join(offers, ", ")), false)
			return
		}
		in, err := s.readInput(r)
		if err != nil {
			writeError(w, r, err, false)
			return
		}
		if media == mediaSSE {
			s.stream(w, r, refine, in)
			return
		}
		out, err := s.run(r, refine, in, nil)
		if err != nil {
			writeError(w, r, err, false)
			return
		}
		s.answer(w, r, out, media)
	}
}

// answer writes a successful outcome as media: refine's image alone for image/png or
// image/jpeg, else the JSON report (refine's with the image as base64 PNG).
func (s *Server) answer(w http.ResponseWriter, r *http.Request, out outcome, media string) {
	if out.r == nil {
		writeJSON(w, http.StatusOK, out.a)
		return
	}
	raw := media == mediaPNG || media == mediaJPEG
	if !raw {
		media = mediaPNG
	}
	img, err := encodeImage(out.r.Image, media)
	if err != nil {
		writeError(w, r, fmt.Errorf("%w: encoding the image: %v", pipeline.ErrInternal, err), false)
		return
	}
	if raw {
		w.Header().Set("Content-Type", media)
		w.Header().Set("Content-Length", strconv.Itoa(len(img)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(img)
		return
	}
	writeJSON(w, http.StatusOK, refineResponse{Refinement: out.r, Image: base64.StdEncoding.EncodeToString(img), MediaType: mediaPNG})
}

// stream serves Accept: text/event-stream: "progress" events, then one "result" (the
// JSON answer) or "error" event. The stream opens at the first event, so the cheap
// checks' errors still get their status code.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, refine bool, in input) {
	rc := http.NewResponseController(w)
	opened := false
	send := func(event string, v any) error {
		if !opened {
			opened = true
			w.Header().Set("Content-Type", mediaSSE)
			w.Header().Set("Cache-Control", "no-cache")
			w.WriteHeader(http.StatusOK)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	out, err := s.run(r, refine, in, func(e pipeline.Event) error { return send("progress", e) })
	if err != nil {
		if !opened {
			writeError(w, r, err, false)
			return
		}
		_ = send("error", struct {
			errorBody
			Code int `json:"code"`
		}{errorBody{Error: err.Error(), Status: statusName(err), RequestID: requestIDOf(r)}, statusCode(err)})
		return
	}
	var v any = out.a
	if out.r != nil {
		img, err := encodeImage(out.r.Image, mediaPNG)
		if err != nil {
			_ = send("error", errorBody{Error: "encoding the image: " + err.Error(), Status: "internal", RequestID: requestIDOf(r)})
			return
		}
		v = refineResponse{Refinement: out.r, Image: base64.StdEncoding.EncodeToString(img), MediaType: mediaPNG}
	}
	_ = send("result", v)
}

// readInput decodes the body: multipart/form-data (an image file part, a prompt field,
// params as fields) or JSON (restRequest). Anything else is 415.
func (s *Server) readInput(r *http.Request) (input, error) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil && r.Header.Get("Content-Type") != "" {
		return input{}, httpErrorf(http.StatusUnsupportedMediaType, "Content-Type %q: %v", r.Header.Get("Content-Type"), err)
	}
	var raw []byte
	var prompt string
	var params json.RawMessage
	switch ct {
	case "application/json":
		var req restRequest
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return input{}, bodyError(err)
		}
		if req.Image == "" {
			return input{}, inputErrorf("image: missing (base64 of a PNG, JPEG or GIF)")
		}
		if raw, err = base64.StdEncoding.DecodeString(req.Image); err != nil {
			return input{}, inputErrorf("image: not standard base64: %v", err)
		}
		prompt, params = req.Prompt, req.Params
	case "multipart/form-data":
		if raw, prompt, params, err = readMultipart(r); err != nil {
			return input{}, err
		}
	default:
		return input{}, httpErrorf(http.StatusUnsupportedMediaType, "Content-Type %q: want application/json or multipart/form-data", r.Header.Get("Content-Type"))
	}
	pr, err := s.parseParams(params)
	if err != nil {
		return input{}, err
	}
	img, err := s.p.DecodeImage(raw)
	if err != nil {
		return input{}, err
	}
	return input{img: img, prompt: prompt, params: pr}, nil
}

// bodyError classifies an error reading a JSON body: 413 past the limit, else 400.
func bodyError(err error) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return err
	}
	return inputErrorf("body: %s", jsonMessage(err))
}

// readMultipart reads the image part, the prompt and the parameter fields. A field's
// value is taken as JSON when it parses as a number or boolean, else as a string, so
// "seed=7" and "masked_blend=false" decode onto pipeline.Params.
func readMultipart(r *http.Request) (img []byte, prompt string, params json.RawMessage, err error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, "", nil, inputErrorf("multipart: %v", err)
	}
	fields := map[string]json.RawMessage{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, "", nil, multipartError(err)
		}
		b, err := io.ReadAll(part)
		if err != nil {
			return nil, "", nil, multipartError(err)
		}
		switch name := part.FormName(); name {
		case "image":
			img = b
		case "prompt":
			prompt = string(b)
		case "":
			return nil, "", nil, inputErrorf("multipart: a part without a form name")
		default:
			if _, dup := fields[name]; dup {
				return nil, "", nil, inputErrorf("multipart: field %q given twice", name)
			}
			v := strings.TrimSpace(string(b))
			if v != "" && json.Valid([]byte(v)) && (v == "true" || v == "false" || strings.ContainsAny(v[:1], "-0123456789")) {
				fields[name] = json.RawMessage(v)
			} else {
				q, _ := json.Marshal(string(b))
				fields[name] = q
			}
		}
	}
	if img == nil {
		return nil, "", nil, inputErrorf("image: missing (a multipart file part named image)")
	}
	if len(fields) > 0 {
		params, _ = json.Marshal(fields)
	}
	return img, prompt, params, nil
}

func multipartError(err error) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return err
	}
	return inputErrorf("multipart: %v", err)
}

// negotiate picks the first of offers that Accept allows, highest quality first; ""
// when none is acceptable. An empty Accept takes offers[0].
func negotiate(accept string, offers []string) string {
	if strings.TrimSpace(accept) == "" {
		return offers[0]
	}
	type choice struct {
		typ string
		q   float64
	}
	var cs []choice
	for _, part := range strings.Split(accept, ",") {
		typ, ps, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := ps["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if q > 0 {
			cs = append(cs, choice{typ, q})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].q > cs[j].q })
	for _, c := range cs {
		for _, o := range offers {
			if c.typ == o || c.typ == "*/*" || (strings.HasSuffix(c.typ, "/*") && strings.HasPrefix(o, strings.TrimSuffix(c.typ, "*"))) {
				if o == mediaSSE && c.typ != mediaSSE {
					continue // a stream only when asked for by name
				}
				return o
			}
		}
	}
	return ""
}

// handleInfo serves GET /v1/info: what the pipeline loaded.
func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.p.Info())
}

// handleRequestState serves GET /v1/requests/{id}.
func (s *Server) handleRequestState(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	st, ok := s.p.Request(id)
	if !ok {
		writeError(w, r, httpErrorf(http.StatusNotFound, "request %q is not in flight", id), false)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// handleRequestCancel serves DELETE /v1/requests/{id}: the request ends with 499 (or a
// "canceled" error event) within one denoising step.
func (s *Server) handleRequestCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.p.Cancel(id) {
		writeError(w, r, httpErrorf(http.StatusNotFound, "request %q is not in flight", id), false)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "state": "cancelling"})
}
