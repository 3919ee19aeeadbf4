#!/usr/bin/env bash
# Times one password POST on the reset page (argon2id hash + the
# complete_reset transaction), five times, against a fresh embedded server.
# usage: bench/reset-post.sh target/release/pwmail 18081
# prints: HTTP status and seconds per POST (curl's time_total)
set -euo pipefail
BIN=$1; PORT=$2
BIN=$(realpath "$BIN")
D=$(mktemp -d); cd "$D"
$BIN user add u@example.com >/dev/null
for i in 1 2 3 4 5; do $BIN user add u$i@example.com >/dev/null; done
$BIN serve --listen 127.0.0.1:$PORT --public-url http://127.0.0.1:$PORT --user-rate 100/60 > serve.out 2> serve.err &
PID=$!
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:$PORT/assets/reset.css && break; sleep 0.1; done
TOKEN=$(sed -n 2p serve.out)
for i in 1 2 3 4 5; do
  curl -s -o /dev/null -X POST http://127.0.0.1:$PORT/api/web/custom/password/admin_reset -H "Authorization: APIToken $TOKEN" -H 'Content-Type: application/json' -d "{\"email\":\"u$i@example.com\"}"
done
sleep 1
for f in pwmail-data/mail/*.eml; do
  T=$(grep -o 'reset/[A-Za-z0-9_-]\{43\}' "$f" | head -1 | cut -d/ -f2)
  [ -n "$T" ] || continue
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X POST http://127.0.0.1:$PORT/reset/$T --data-urlencode 'password=plum trellis quasar lantern' --data-urlencode 'password_confirm=plum trellis quasar lantern'
done
kill $PID; wait $PID 2>/dev/null || true
