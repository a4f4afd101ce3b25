package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPanicIsA500WithTheRequestID(t *testing.T) {
	s := &Server{log: zerolog.Nop()}
	h := s.requestID(s.recoverPanic(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/v1/info", nil)
	req.Header.Set("X-Request-Id", "p-1")
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	var e errorBody
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
	assert.Equal(t, "p-1", e.RequestID)
	assert.Contains(t, e.Error, "p-1")
}

func TestNegotiate(t *testing.T) {
	offers := []string{mediaJSON, mediaSSE, mediaPNG, mediaJPEG}
	for accept, want := range map[string]string{
		"":                                 mediaJSON,
		"*/*":                              mediaJSON,
		"image/*":                          mediaPNG,
		"image/jpeg":                       mediaJPEG,
		"image/png;q=0.5, image/jpeg":      mediaJPEG,
		"text/event-stream":                mediaSSE,
		"text/*":                           "",
		"text/html":                        "",
		"image/png;q=0, application/json":  mediaJSON,
		"garbage;;, image/png":             mediaPNG,
		"application/json, image/png;q=.9": mediaJSON,
	} {
		assert.Equal(t, want, negotiate(accept, offers), "Accept %q", accept)
	}
}
