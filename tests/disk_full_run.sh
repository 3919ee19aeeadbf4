#!/usr/bin/env bash
# A full disk, for real: pwmail serve with its data directory on a small
# tmpfs, mail to a real SMTP server (aiosmtpd) elsewhere, 8 threads calling
# ResetPasswordByAdmin until the disk fills and for a while after; then the
# tmpfs is grown and the outbox drains. Prints responses by status, /readyz
# answers while full and after, and emails delivered more than once (by
# Message-ID, as the SMTP server received them).
#
# Needs root (mount) and the test venv (`cargo xtask test` creates it).
# Not part of the suite: the suite makes the database full without root
# (tests/tests/disk_full.rs). Usage: tests/disk_full_run.sh [PWMAIL_BINARY]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pwmail="${1:-$root/target/debug/pwmail}"
python="$root/.venv/bin/python"
work="$(mktemp -d /tmp/pwmail-diskfull.XXXXXX)"
data="$work/data"
mkdir -p "$data" "$work/mail"
mount -t tmpfs -o size=3m,mode=0700 tmpfs "$data"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  umount "$data" 2>/dev/null || true
}
trap cleanup EXIT

free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
smtp_port="$(free_port)"
api_port="$(free_port)"
"$python" "$root/crates/pwmail-testkit/smtp/smtp_server.py" --port "$smtp_port" \
  --maildir "$work/mail" --ready-file "$work/smtp.ready" --tls-mode none \
  >"$work/smtp.log" 2>&1 &
pids+=($!)
until [ -e "$work/smtp.ready" ]; do sleep 0.1; done

cd "$work"
export PWMAIL_DATA_DIR="$data"
users=50
"$pwmail" migrate >/dev/null
for i in $(seq 1 "$users"); do "$pwmail" user add "u$i@example.com" >/dev/null; done
"$pwmail" serve --listen "127.0.0.1:$api_port" \
  --smtp-url "smtp://127.0.0.1:$smtp_port?tls=none" \
  --token-rate 1000000/60 --user-rate 1000000/60 --max-backlog 1000000 \
  >"$work/serve.out" 2>"$work/serve.log" &
pids+=($!)
until "$python" -c "import socket; socket.create_connection(('127.0.0.1', $api_port))" 2>/dev/null; do sleep 0.1; done
"$pwmail" user add ops@example.com --admin >/dev/null
token="$("$pwmail" token create ops@example.com --label load | tail -n 1)"

API_PORT="$api_port" TOKEN="$token" USERS="$users" DATA="$data" "$python" - <<'EOF'
import collections, http.client, json, os, subprocess, threading, time

port, token, users = int(os.environ["API_PORT"]), os.environ["TOKEN"], int(os.environ["USERS"])
statuses, readyz = collections.Counter(), []
stop = threading.Event()
lock = threading.Lock()

def call(conn, i):
    body = json.dumps({"email": f"u{i % users + 1}@example.com"})
    conn.request("POST", "/api/web/custom/password/admin_reset", body,
                 {"Authorization": f"APIToken {token}", "Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    return r.status

def load(n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    i = n
    while not stop.is_set():
        try:
            status = call(conn, i)
        except Exception as e:
            status = type(e).__name__
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        with lock:
            statuses[status] += 1
        i += 8

def ready():
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/readyz")
    r = conn.getresponse()
    return r.status, r.read().decode().strip()

threads = [threading.Thread(target=load, args=(n,)) for n in range(8)]
for t in threads:
    t.start()
# Until the disk is full and for 20 s after the first 503 code 14.
started, full_at = time.time(), None
while time.time() - started < 300:
    time.sleep(1)
    readyz.append(ready())
    if full_at is None and readyz[-1][0] == 503:
        full_at = time.time()
    if full_at and time.time() - full_at > 20:
        break
stop.set()
for t in threads:
    t.join()
print("responses while loading:", dict(statuses))
print("readyz while loading:", dict(collections.Counter(readyz)))
subprocess.run(["mount", "-o", "remount,size=64m", os.environ["DATA"]], check=True)
after = []
for _ in range(15):
    time.sleep(1)
    after.append(ready())
print("readyz in the 15 s after the disk was grown:", [s for s, _ in after])
EOF

# Let the outbox drain, then count what arrived.
states() {
  "$python" -c "import sqlite3,sys; c=sqlite3.connect('file:$data/pwmail.db?mode=ro', uri=True); print(dict(c.execute('SELECT state, count(*) FROM outbox GROUP BY state').fetchall()))"
}
for _ in $(seq 1 120); do
  now="$(states)"
  case "$now" in *queued*|*retrying*|*sending*) sleep 1 ;; *) break ;; esac
done
echo "outbox rows by state after draining: $now"
received="$(grep -h -i '^Message-ID:' "$work"/mail/*/* 2>/dev/null | sort)"
echo "emails received: $(printf '%s\n' "$received" | grep -c . || true)"
echo "distinct Message-IDs: $(printf '%s\n' "$received" | sort -u | grep -c . || true)"
echo "Message-IDs received more than once: $(printf '%s\n' "$received" | uniq -d | grep -c . || true)"
echo "log lines by level: $(awk '{print $2}' "$work/serve.log" | sort | uniq -c | tr -s ' \n' ' ')"
echo "WARN and ERROR lines by message:"
grep -E '^[^ ]+ +(WARN|ERROR)' "$work/serve.log" | sed -E 's/^[^ ]+ +//; s/ error=.*//' | cut -c1-100 | sort | uniq -c | sort -rn
echo "work directory: $work"
