package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
)

// The inference path both protocols share: decoded input in, the pipeline's outcome
// out, with the server's deadline, drain and metrics around it.

// input is one decoded inference request.
type input struct {
	img    *imageio.RGB8
	prompt string
	params *pipeline.Params
}

// outcome is what the pipeline returned: an assessment, or a refinement (which holds
// its assessment).
type outcome struct {
	a *pipeline.Assessment
	r *pipeline.Refinement
}

// errShuttingDown refuses requests that arrive while the server drains.
var errShuttingDown = fmt.Errorf("%w: the server is shutting down", pipeline.ErrUnavailable)

// model is the name of the model a request runs (metrics, KServe).
func model(refine bool) string {
	if refine {
		return "refine"
	}
	return "assess"
}

// run sends one request through the pipeline. obs, if set, also receives the progress
// events.
func (s *Server) run(r *http.Request, refine bool, in input, obs pipeline.Observer) (outcome, error) {
	if !s.ready.Load() {
		return outcome{}, errShuttingDown
	}
	ctx := r.Context()
	if s.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
	}
	t := s.metrics.begin(model(refine))
	req := pipeline.Request{ID: requestIDOf(r), Image: in.img, Prompt: in.prompt, Params: in.params,
		Observer: func(e pipeline.Event) error {
			t.event(e)
			if obs != nil {
				return obs(e)
			}
			return nil
		}}
	var out outcome
	var err error
	if refine {
		out.r, err = s.p.Refine(ctx, req)
		if out.r != nil {
			out.a = out.r.Assessment
		}
	} else {
		out.a, err = s.p.Assess(ctx, req)
	}
	t.end(err)
	if err != nil {
		ev := s.log.Info()
		if pipeline.StatusOf(err) == pipeline.StatusInternal {
			ev = s.log.Error()
		}
		ev.Str("request_id", req.ID).Str("model", model(refine)).Str("status", statusName(err)).Err(err).Msg("inference failed")
	}
	return out, err
}

// parseParams applies a JSON object of parameters (the names of pipeline.Params' JSON
// fields) onto the pipeline's defaults. Unknown names and wrong types are bad input;
// values are checked by the pipeline.
func (s *Server) parseParams(raw json.RawMessage) (*pipeline.Params, error) {
	pr := s.p.DefaultParams()
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return &pr, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pr); err != nil {
		return nil, inputErrorf("params: %s", jsonMessage(err))
	}
	return &pr, nil
}

// jsonMessage is a JSON decoding error in the client's terms.
func jsonMessage(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q: want a %s, got a JSON %s", te.Field, te.Type, te.Value)
		}
		return fmt.Sprintf("want a %s, got a JSON %s", te.Type, te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, err)
	}
	return err.Error()
}

// encodeImage is the refined image in the chosen media type: PNG through
// imageio.EncodePNG, the CLI's encoder, so the bytes are the same; JPEG at quality 95.
func encodeImage(img *imageio.RGB8, mediaType string) ([]byte, error) {
	var buf bytes.Buffer
	var err error
	if mediaType == "image/jpeg" {
		err = imageio.EncodeJPEG(&buf, img, jpegQuality)
	} else {
		err = imageio.EncodePNG(&buf, img)
	}
	return buf.Bytes(), err
}

// jpegQuality is the quality of JPEG responses.
const jpegQuality = 95
