#!/usr/bin/env bash
# make load: pushes 50,000 generated events (EVENTS) through local SQS into
# the streamer with its default flags, RUNS times (default 3), and writes
# the medians of messages/s, streamer CPU per message and peak RSS into
# docs/BENCHMARKS.md (WRITE=0 to only print them). Starts the emulators
# unless they are up, and stops what it started.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mkdir -p bin out/load
echo "==> building bin/streamer (static, as make build does)"
CGO_ENABLED=0 go build -trimpath -o bin/streamer ./cmd/streamer
go build -o out/load/streamerload ./internal/cmd/streamerload
write=()
if [[ "${WRITE:-1}" == 1 ]]; then
  write=(--write docs/BENCHMARKS.md)
fi
scripts/with-emulators.sh out/load/streamerload --bin bin/streamer --events "${EVENTS:-50000}" --runs "${RUNS:-3}" --breakdown \
  --out out/load --command "make load   # scripts/load.sh: EVENTS=${EVENTS:-50000} RUNS=${RUNS:-3}" "${write[@]}" "$@"
