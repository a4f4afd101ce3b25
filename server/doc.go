// Package server is `grefine serve`: the loaded pipeline behind HTTP.
package server
