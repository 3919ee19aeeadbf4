#!/usr/bin/env bash
# PostgreSQL's instructions per issued link, counted by callgrind: they
# repeat from run to run where times on a shared machine do not, so two
# schemas (or two builds' migrations) can be compared in one sitting.
#
# A private cluster (initdb in a temporary directory, port 5499) is migrated
# by BIN, given an admin, a token and 10,000 users, and 300 groups of 16
# issues (pwmail_issue_links, functions/postgres/), so its tables and
# statistics look lived in. Then `postgres --single` runs under callgrind
# twice, on copies of that cluster: 20 and 120 more groups, each its own
# transaction. The difference over 1,600 issues is one issue's
# instructions: the issue statement with its triggers and index upkeep, not
# the protocol, the commit's fsync, nor the dispatcher's claims and settles.
#
# usage: bench/pg-issue-instructions.sh target/release/pwmail [SQL]
#   SQL (optional) runs after the migrations, e.g. to try an index or a
#   constraint: "DROP INDEX outbox_request;"
# prints: instructions per issue, and the two runs' totals
# needs: PostgreSQL's server binaries (/usr/lib/postgresql/*/bin), valgrind,
# python3, and root (it runs PostgreSQL as the postgres user).
set -euo pipefail
BIN=$(realpath "$1"); TWEAK=${2:-}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PORT=5499
W=$(mktemp -d /tmp/pg-issue-instructions.XXXX)
chown postgres "$W"; chmod 700 "$W"
as_pg() { su postgres -c "$*"; }
trap 'as_pg "$PGBIN/pg_ctl -D $W/data stop -m immediate" >/dev/null 2>&1 || true; rm -rf "$W"' EXIT

# One group of 16 issues, group number G; every value fixed by G and the
# call's place, so both runs do the same work.
group() {
  local g=$1
  cat <<SQL
SELECT count(*) FROM pwmail_issue_links(
  ARRAY(SELECT ROW(i + 1, 1, 1, 'send_password_email', false,
                   sha256(convert_to($g || ':' || i, 'UTF8')), 1700086400000 + $g,
                   '0190f0a0-0000-7000-8000-' || lpad($g::text, 6, '0') || lpad(i::text, 6, '0') || '@example.com',
                   'send_password_email',
                   'https://pwmail.example.com/reset/' || encode(sha256(convert_to($g || '/' || i, 'UTF8')), 'hex'),
                   1700086400000 + $g, NULL, '0190f0a0-' || $g || '-' || i, 1700000000000 + $g,
                   NULL, NULL, NULL, NULL, NULL)::pwmail_link_call
        FROM generate_series(0, 15) i ORDER BY i),
  ARRAY(SELECT ROW(($g * 16 + i) % 10000 + 2, 'user:' || (($g * 16 + i) % 10000 + 2),
                   'user' || (($g * 16 + i) % 10000) || '@example.com', '', NULL, NULL,
                   NULL)::pwmail_link_user
        FROM generate_series(0, 15) i ORDER BY i),
  1::bigint, 1000000000::bigint);

SQL
}
groups() { for g in $(seq "$1" "$2"); do group "$g"; done; }

as_pg "$PGBIN/initdb -D $W/data -A trust -U postgres" >/dev/null
as_pg "$PGBIN/pg_ctl -D $W/data -o '-p $PORT -k $W -c listen_addresses=127.0.0.1' -l $W/log start -w" >/dev/null
URL="postgres://postgres@127.0.0.1:$PORT/postgres"
PWMAIL_DATABASE_URL="$URL" "$BIN" migrate >/dev/null
psql -q "$URL" -v ON_ERROR_STOP=1 -c "INSERT INTO users (email, email_key, is_admin, created_at)
  VALUES ('admin@example.com', 'admin@example.com', true, 0);
  INSERT INTO api_tokens (user_id, token_hash, label, created_at) VALUES (1, sha256('x'), 'bench', 0);"
python3 -c "
print('email')
for i in range(10000): print(f'user{i}@example.com')" > "$W/users.csv"
PWMAIL_DATABASE_URL="$URL" "$BIN" user import "$W/users.csv" >/dev/null
if [ -n "$TWEAK" ]; then psql -q "$URL" -v ON_ERROR_STOP=1 -c "$TWEAK"; fi
groups 1000 1299 > "$W/before.sql"
psql -q "$URL" -v ON_ERROR_STOP=1 -f "$W/before.sql" >/dev/null
psql -q "$URL" -c "VACUUM ANALYZE" >/dev/null
as_pg "$PGBIN/pg_ctl -D $W/data stop -w" >/dev/null

count() { # groups -> instructions of a single-user run of that many groups
  local n=$1
  as_pg "cp -a $W/data $W/data.$n"
  groups 0 $((n - 1)) > "$W/run.$n.sql"; chmod 644 "$W/run.$n.sql"
  as_pg "valgrind --tool=callgrind --callgrind-out-file=$W/callgrind.$n $PGBIN/postgres --single -j -D $W/data.$n postgres < $W/run.$n.sql" > "$W/single.$n.log" 2>&1
  if grep -q ERROR "$W/single.$n.log"; then grep -m3 ERROR "$W/single.$n.log" >&2; exit 1; fi
  grep -o "Collected : [0-9]*" "$W/single.$n.log" | awk '{print $3}'
}
few=$(count 20); many=$(count 120)
echo "instructions per issue: $(( (many - few) / 1600 ))  (runs of 20 and 120 groups of 16: $few, $many)"
