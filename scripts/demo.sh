#!/usr/bin/env bash
# make demo: the streamer end to end on the local emulators. Starts dynalite
# and local-aws-sqs (unless they are up), creates Sentinel's session table
# with sample sessions and a queue with a DLQ and a redrive policy, runs the
# streamer with a short orphan grace, sends a sample mix (every verdict, out
# of scope events, a forged envelope, a poison message, an AssumeRole whose
# session is written 2 s after it), prints the findings and a summary, and
# stops every process it started. The backfill demo is make demo-backfill.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
began=$SECONDS

out="$root/out/demo"
rm -rf "$out"
mkdir -p "$out"

echo "==> building the streamer"
go build -o "$out/streamer" ./cmd/streamer
go build -o "$out/streamerdemo" ./internal/cmd/streamerdemo

run_demo() {
  set -euo pipefail
  pid=""
  local code
  # Whatever happens, stop the streamer this demo started.
  trap 'if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi' EXIT

  echo "==> creating the session table and the queue"
  "$out/streamerdemo" setup --dir "$out"
  # shellcheck disable=SC1091
  source "$out/env"

  # Visibility 25 s: local-aws-sqs holds a long poll open until it has 10
  # messages or 20 s went by, so a shorter timeout would expire messages
  # inside the emulator's poll (AWS answers as soon as it has any).
  echo "==> streamer --queue-url $QUEUE_URL --table $TABLE --orphan-grace 5s --accounts 111122223333,444455556666"
  "$out/streamer" --queue-url "$QUEUE_URL" --table "$TABLE" --sink "file:$out/findings.jsonl" \
    --orphan-grace 5s --visibility-timeout 25s --accounts 111122223333,444455556666 \
    --metrics-addr 127.0.0.1:0 --shutdown-timeout 10s 2>"$out/streamer.log" &
  pid=$!
  local addr=""
  for _ in $(seq 100); do
    addr="$(grep -o '"addr":"[^"]*"' "$out/streamer.log" | head -n1 | cut -d'"' -f4 || true)"
    [[ -n "$addr" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$out/streamer.log"; echo "streamer exited" >&2; return 1; }
    sleep 0.1
  done
  [[ -n "$addr" ]] || { cat "$out/streamer.log"; echo "streamer did not start" >&2; return 1; }
  echo "    /healthz: $(curl -s "http://$addr/healthz")   /readyz: $(curl -s "http://$addr/readyz")"

  echo "==> sending the sample mix"
  "$out/streamerdemo" send --dir "$out"

  echo "==> waiting for the queue to drain and the poison message to reach the DLQ"
  local waited=$SECONDS
  "$out/streamerdemo" wait --dir "$out" --timeout 100s
  echo "    done in $((SECONDS - waited)) s"

  echo "==> streamer warnings, one of each (JSON logs: message ids and attacker strings only as values)"
  grep -m1 '"message":"message rejected' "$out/streamer.log" | cut -c1-300 || true
  grep -m1 '"message":"undecodable message' "$out/streamer.log" | cut -c1-300 || true
  echo
  "$out/streamerdemo" summary --dir "$out" --metrics "http://$addr"

  echo
  echo "==> SIGTERM"
  local t0=$SECONDS
  kill -TERM "$pid"
  set +e
  wait "$pid"
  code=$?
  set -e
  pid=""
  echo "    streamer exited $code after $((SECONDS - t0)) s; log: $out/streamer.log"
  [[ $code -eq 0 ]]
}

export -f run_demo
export out
scripts/with-emulators.sh bash -c run_demo
echo "==> demo took $((SECONDS - began)) s"
