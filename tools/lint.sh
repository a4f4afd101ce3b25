#!/usr/bin/env bash
# make lint: gofmt, go vet, and a doc.go in every Go package.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
bad=$(gofmt -l $(git ls-files '*.go'))
[ -z "$bad" ] || { echo "lint: gofmt needed:"; echo "$bad"; exit 1; }
go vet ./...
missing=0
for d in $(go list -f '{{.Dir}}' ./...); do
  [ -f "$d/doc.go" ] || { echo "lint: ${d#$PWD/} has no doc.go"; missing=1; }
done
[ $missing = 0 ]
echo "lint: ok"
