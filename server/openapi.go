package server

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3.1 document of every route (server/openapi.json).
//
//go:embed openapi.json
var openAPI []byte

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
