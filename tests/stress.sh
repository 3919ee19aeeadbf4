#!/usr/bin/env bash
# Runs test binaries many times in a row while two busy loops load both
# cores: a test that fails at random shows up here, not in CI.
#
#   tests/stress.sh [RUNS] [TEST...]      default: 50 runs of contract,
#                                         reset_page, smtp and cli
#
# Needs what `cargo xtask test` prepares (.venv) and the machine's PostgreSQL.
# Prints one line per test binary: passed and failed runs, and seconds taken;
# a failed run's output is kept in target/stress/.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-50}"; shift || true
tests=("${@:-contract reset_page smtp cli}")
read -r -a tests <<< "${tests[*]}"
logs="$PWD/target/stress"
mkdir -p "$logs"
args=()
for t in "${tests[@]}"; do args+=(--test "$t"); done
cargo test -p pwmail-tests -p pwmail-server "${args[@]}" --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"], m["manifest_path"].rsplit("/", 1)[0])
' > "$logs/binaries"
for _ in 1 2; do (while :; do :; done) & done
trap 'kill $(jobs -p) 2>/dev/null' EXIT
while read -r name bin dir; do
  pass=0 fail=0 start=$(date +%s)
  for run in $(seq 1 "$runs"); do
    if (cd "$dir" && "$bin" -q > "$logs/$name-$run.log" 2>&1); then
      pass=$((pass + 1)); rm -f "$logs/$name-$run.log"
    else
      fail=$((fail + 1)); echo "$name run $run failed: $logs/$name-$run.log"
    fi
  done
  echo "$name: $pass passed, $fail failed of $runs runs in $(( $(date +%s) - start )) s under two busy loops"
done < "$logs/binaries"
