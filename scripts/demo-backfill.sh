#!/usr/bin/env bash
# The backfill demo: emulators up, Sentinel's table created and filled with
# sample sessions, a sample trail archive written, the backfill run over it,
# findings and the summary shown, and everything it started stopped again.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

out="$root/out/demo-backfill"
mkdir -p "$out"
table="demo-sessions-$(date +%s)"

echo "==> building"
CGO_ENABLED=0 go build -o "$out/backfill" ./cmd/backfill
go build -o "$out/seed" ./internal/cmd/seed

run_demo() {
  echo "==> loading sample sessions into $table and writing a sample trail archive"
  since="$("$out/seed" --table "$table" --archive "$out/trail")"

  echo "==> backfill --source file:$out/trail --table $table --since $since"
  set +e
  "$out/backfill" --source "file:$out/trail" --table "$table" --since "$since" \
    --sink "file:$out/findings.jsonl" --report "$out/report.html" 2>"$out/summary.txt"
  code=$?
  set -e

  echo
  echo "==> findings, two of each category (category, severity, finding_id, reason), from $out/findings.jsonl"
  if command -v jq >/dev/null; then
    jq -r -s 'group_by(.category)[] | .[:2][] | [.category, .severity, .finding_id, .reason] | @tsv' "$out/findings.jsonl"
  else
    head -n 20 "$out/findings.jsonl"
  fi
  echo "... $(wc -l <"$out/findings.jsonl") findings in all"
  cat "$out/summary.txt"
  echo "==> the HTML report: $out/report.html"
  echo "==> the same findings as a table: backfill --source findings:$out/findings.jsonl --format table"
  "$out/backfill" --source "findings:$out/findings.jsonl" --format table 2>/dev/null | tail -n 16 || true
  echo "==> backfill exited $code (0 clean, 1 findings, 2 error)"
  [[ $code -le 1 ]]
}

rm -f "$out/findings.jsonl"
export -f run_demo
export out table
scripts/with-emulators.sh bash -c run_demo
