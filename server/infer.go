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

// input is one inference request as read off the wire: the image still encoded (raw)
// or, for a KServe UINT8 tensor, as pixels (img).
type input struct {
	raw    []byte
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

// run sends one request through the pipeline: admission first (its place among the
// slots and the queue, or 429 at once), then the image's decoding (header first, within
// the pipeline's decode budget), then the run. obs, if set, also receives the progress
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
	out, err := s.infer(ctx, r, refine, in, func(e pipeline.Event) error {
		t.event(e)
		if obs != nil {
			return obs(e)
		}
		return nil
	})
	t.end(err)
	if err != nil {
		ev := s.log.Info()
		if pipeline.StatusOf(err) == pipeline.StatusInternal {
			ev = s.log.Error()
		}
		ev.Str("request_id", requestIDOf(r)).Str("model", model(refine)).Str("status", statusName(err)).Err(err).Msg("inference failed")
	}
	return out, err
}

func (s *Server) infer(ctx context.Context, r *http.Request, refine bool, in input, obs pipeline.Observer) (out outcome, err error) {
	tk, err := s.p.Admit(ctx, pipeline.Admission{ID: requestIDOf(r), Owner: ownerOf(r), Refine: refine, Prompt: in.prompt, Params: in.params})
	if err != nil {
		return out, err
	}
	defer tk.Close()
	if in.img != nil {
		err = tk.SetImage(in.img)
	} else {
		_, err = tk.DecodeImage(in.raw)
	}
	if err != nil {
		return out, err
	}
	req := pipeline.Request{Ticket: tk, Observer: obs}
	if refine {
		out.r, err = s.p.Refine(ctx, req)
		if out.r != nil {
			out.a = out.r.Assessment
		}
	} else {
		out.a, err = s.p.Assess(ctx, req)
	}
	return out, err
}

// parseParams applies a JSON object of parameters (the parameter table's JSON names,
// each once) onto the pipeline's defaults. Unknown names, wrong types and duplicate keys
// are bad input; values are checked by the pipeline.
func (s *Server) parseParams(raw json.RawMessage) (*pipeline.Params, error) {
	pr, err := pipeline.ParseParams(raw, s.p.DefaultParams())
	if err != nil {
		return nil, err
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
