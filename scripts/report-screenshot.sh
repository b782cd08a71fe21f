#!/usr/bin/env bash
# The README's report screenshot, from the backfill itself: emulators up, a
# 14-day sample (3,000 events) seeded into a session table and a trail
# archive, `backfill --report`, then headless Chromium renders the page into
# docs/report.png. Chromium logs every console message (errors, uncaught
# exceptions, Content-Security-Policy violations) with --enable-logging; the
# script fails if there is any, or if the page's script did not run.
#   scripts/report-screenshot.sh [OUT.png]      (default docs/report.png)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
png="$(realpath -m "${1:-docs/report.png}")"
chromium="$(command -v chromium || command -v chromium-browser || true)"
[[ -n "$chromium" ]] || { echo "report-screenshot: no chromium on PATH (Debian: apt-get install chromium)" >&2; exit 2; }

out="$root/out/report-screenshot"
rm -rf "$out" && mkdir -p "$out"
go build -o "$out/backfill" ./cmd/backfill
go build -o "$out/seed" ./internal/cmd/seed

shoot() {
  cd "$out"
  table="report-sessions-$(date +%s)"
  since="$(./seed --table "$table" --archive trail --events 3000 --days 14 --retention 360h --seed 7)"
  set +e
  ./backfill --source file:trail --table "$table" --since "$since" --session-retention 15d \
    --report report.html --summary-json summary.json --sink file:findings.jsonl --quiet 2>summary.txt
  code=$?
  set -e
  [[ $code -le 1 ]] || { cat summary.txt >&2; exit 2; }
  cat summary.txt
}
export -f shoot
export out
scripts/with-emulators.sh bash -c shoot

url="file://$out/report.html"
"$chromium" --headless --disable-gpu --no-sandbox --hide-scrollbars --window-size=1280,2400 \
  --enable-logging=stderr --v=0 --screenshot="$png" "$url" 2>"$out/chromium.log" >/dev/null
"$chromium" --headless --disable-gpu --no-sandbox --enable-logging=stderr --v=0 \
  --dump-dom "$url" 2>>"$out/chromium.log" >"$out/dom.html"

if grep -F ':CONSOLE' "$out/chromium.log"; then
  echo "report-screenshot: the page logged console messages (above)" >&2
  exit 1
fi
grep -q 'data-filter-ready=' "$out/dom.html" || { echo "report-screenshot: the page's script did not run" >&2; exit 1; }
echo "report-screenshot: $png from $out/report.html; no console message"
