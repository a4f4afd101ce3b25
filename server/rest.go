package server

import (
	"bytes"
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

	"github.com/grefine/grefine/internal/strictjson"
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

// readInput reads the body, without decoding the image: multipart/form-data (one
// image file part, at most one prompt field, params as fields) or JSON (restRequest).
// Anything else is 415. Every name may appear once (a second image, prompt or parameter
// is 400, as are duplicate JSON keys and data after the JSON object).
func (s *Server) readInput(r *http.Request) (input, error) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil && r.Header.Get("Content-Type") != "" {
		return input{}, httpErrorf(http.StatusUnsupportedMediaType, "Content-Type %q: %v", r.Header.Get("Content-Type"), err)
	}
	switch ct {
	case "application/json":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return input{}, bodyError(err)
		}
		var req restRequest
		if err := decodeStrict(body, &req); err != nil {
			return input{}, err
		}
		if req.Image == "" {
			return input{}, inputErrorf("image: missing (base64 of a PNG, JPEG or GIF)")
		}
		raw, err := base64.StdEncoding.DecodeString(req.Image)
		if err != nil {
			return input{}, inputErrorf("image: not standard base64: %v", err)
		}
		pr, err := s.parseParams(req.Params)
		if err != nil {
			return input{}, err
		}
		return input{raw: raw, prompt: req.Prompt, params: pr}, nil
	case "multipart/form-data":
		return s.readMultipart(r)
	}
	return input{}, httpErrorf(http.StatusUnsupportedMediaType, "Content-Type %q: want application/json or multipart/form-data", r.Header.Get("Content-Type"))
}

// decodeStrict decodes one JSON object into v: no duplicate keys (strictjson), no
// unknown fields, nothing after the object.
func decodeStrict(body []byte, v any) error {
	if err := strictjson.Check(body); err != nil {
		return inputErrorf("body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	return nil
}

// bodyError classifies an error reading a JSON body: 413 past the limit, else 400.
func bodyError(err error) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return err
	}
	return inputErrorf("body: %s", jsonMessage(err))
}

// readMultipart reads the image part, the prompt and the parameter fields, each at
// most once. A field's name is a parameter's JSON name and its value that parameter's
// text ("seed=7", "masked_blend=false"), parsed by the parameter table.
func (s *Server) readMultipart(r *http.Request) (input, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return input{}, inputErrorf("multipart: %v", err)
	}
	in := input{}
	pr := s.p.DefaultParams()
	seen := map[string]bool{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return input{}, multipartError(err)
		}
		name := part.FormName()
		switch {
		case name == "":
			return input{}, inputErrorf("multipart: a part without a form name")
		case seen[name]:
			return input{}, inputErrorf("multipart: field %q given twice", name)
		}
		seen[name] = true
		b, err := io.ReadAll(part)
		if err != nil {
			return input{}, multipartError(err)
		}
		switch name {
		case "image":
			in.raw = b
		case "prompt":
			in.prompt = string(b)
		default:
			if err := pr.Set(name, string(b)); err != nil {
				return input{}, err
			}
		}
	}
	if in.raw == nil {
		return input{}, inputErrorf("image: missing (a multipart file part named image)")
	}
	in.params = &pr
	return in, nil
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

// handleRequestState serves GET /v1/requests/{id}: only the token that made a
// request finds it (another token's request of that id is 404).
func (s *Server) handleRequestState(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	st, ok := s.p.RequestFor(ownerOf(r), id)
	if !ok {
		writeError(w, r, httpErrorf(http.StatusNotFound, "request %q is not in flight", id), false)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// handleRequestCancel serves DELETE /v1/requests/{id}: the request ends with 499 (or a
// "canceled" error event) within one denoising step. Only the token that made it can.
func (s *Server) handleRequestCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.p.CancelFor(ownerOf(r), id) {
		writeError(w, r, httpErrorf(http.StatusNotFound, "request %q is not in flight", id), false)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "state": "cancelling"})
}
