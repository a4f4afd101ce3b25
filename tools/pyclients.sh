#!/usr/bin/env bash
# Real clients against a live `grefine serve` on the tiny model set (called by make test):
#   - tritonclient[http]'s InferenceServerClient: health, metadata, infer (pytest)
#   - schemathesis against /openapi.json: every check but positive_data_acceptance (a
#     schema cannot say "these bytes decode as an image", so schema-valid random bodies
#     are rightly 400); zero 5xx, zero schema violations
#   - SIGTERM: the server drains and exits 0
# The clients live in .venv-test/ (pinned in tools/pyclients/requirements.txt); a second
# run reuses it when the requirements have not changed. --venv-only: only that.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
venv=.venv-test
req=tools/pyclients/requirements.txt
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "pyclients: installing $(grep -v '^#' "$req" | tr '\n' ' ')into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi
[ "${1:-}" = --venv-only ] && exit 0  # tools/triton-test.sh: just the clients' venv

tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
go build -o "$tmp/grefine" ./cmd/grefine
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$tmp/grefine" --models testdata/models/tiny --hash-cache "" serve --addr "127.0.0.1:$port" --slots 2 2>"$tmp/serve.log" &
pid=$!
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$tmp/serve.log"; echo "pyclients: grefine serve died" >&2; exit 1; }
  sleep 0.2
done

export GRF_SERVE_URL="127.0.0.1:$port" GRF_SMALL_PNG=tools/pyclients/small.png
"$venv/bin/python" -m pytest -q -p no:cacheprovider tools/pyclients/test_tritonclient.py
# From $tmp, so schemathesis keeps its cache (.schemathesis/) out of the tree.
(cd "$tmp" && "$OLDPWD/$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" --checks all --exclude-checks positive_data_acceptance \
  --max-examples 25 --seed 1 --workers 2 --no-color) 2>&1 | tee "$tmp/schemathesis.log" | tail -40
grep -q "passed" "$tmp/schemathesis.log"

kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
pid=
if [ "$rc" != 0 ] || ! grep -q '"message":"drained"' "$tmp/serve.log"; then
  tail -5 "$tmp/serve.log"; echo "pyclients: serve exited $rc after SIGTERM (want 0 after the drain)" >&2; exit 1
fi
if grep -q '"status":5[0-9][0-9]' "$tmp/serve.log"; then
  grep '"status":5[0-9][0-9]' "$tmp/serve.log" | head; echo "pyclients: the server answered 5xx" >&2; exit 1
fi
echo "pyclients: ok (tritonclient, schemathesis, SIGTERM drain)"
