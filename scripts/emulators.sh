#!/usr/bin/env bash
# Local AWS emulators for tests and the demo: dynalite (DynamoDB) and
# local-aws-sqs (SQS), both in memory, listening on 127.0.0.1.
#
#   scripts/emulators.sh start   install tools/node_modules if missing, start
#                                both (or reuse healthy ones), write .emulators/env
#   scripts/emulators.sh stop    stop what start started (idempotent)
#   scripts/emulators.sh env     print .emulators/env
#
# Then: source .emulators/env   (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_SQS,
# region and dummy credentials, which the AWS SDK's default chain picks up).
#
# Ports: DYNALITE_PORT (default 4567), SQS_PORT (default 4568).
# State: .emulators/{dynalite,sqs}.pid, .emulators/{dynalite,sqs}.log, .emulators/env.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="$root/.emulators"
tools="$root/tools"
dynalite_port="${DYNALITE_PORT:-4567}"
sqs_port="${SQS_PORT:-4568}"
wait_seconds=30

die() { echo "emulators: $*" >&2; exit 1; }
log() { echo "emulators: $*" >&2; }

# alive NAME: the pid recorded for NAME is running and is still our node
# process (guards against a recycled pid).
alive() {
  local pidfile="$state/$1.pid" pid
  [[ -f "$pidfile" ]] || return 1
  pid="$(cat "$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$2"
}

# answers PORT: something speaks HTTP on 127.0.0.1:PORT (any status code).
answers() {
  local code
  code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1/" 2>/dev/null || true)"
  [[ -n "$code" && "$code" != "000" ]]
}

port_of() { # recorded port of a running emulator
  cat "$state/$1.port" 2>/dev/null || true
}

ensure_node_modules() {
  command -v node >/dev/null || die "node is not installed (apt-get install nodejs npm)"
  if [[ ! -x "$tools/node_modules/.bin/dynalite" || ! -d "$tools/node_modules/local-aws-sqs" ]]; then
    command -v npm >/dev/null || die "npm is not installed (apt-get install npm)"
    log "installing tools/node_modules (npm ci)"
    (cd "$tools" && npm ci --no-audit --no-fund) >&2 || die "npm ci failed in tools/"
  fi
}

# launch NAME PORT MARKER CMD...: start CMD in the background unless a healthy
# one is already running, then wait until it answers.
launch() {
  local name="$1" port="$2" marker="$3"
  shift 3
  if alive "$name" "$marker"; then
    local running_port
    running_port="$(port_of "$name")"
    if [[ -n "$running_port" ]] && answers "$running_port"; then
      log "$name already running on port $running_port (pid $(cat "$state/$name.pid")), reusing it"
      return 0
    fi
    log "$name (pid $(cat "$state/$name.pid")) is not answering; restarting it"
    stop_one "$name" "$marker"
  fi
  if answers "$port"; then
    die "port $port is taken by another process; set ${name^^}_PORT to a free port"
  fi
  nohup "$@" </dev/null >"$state/$name.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$state/$name.pid"
  echo "$port" >"$state/$name.port"
  local deadline=$((SECONDS + wait_seconds))
  until answers "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$state/$name.log" >&2 || true
      rm -f "$state/$name.pid" "$state/$name.port"
      die "$name exited before answering on port $port (log: .emulators/$name.log)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 20 "$state/$name.log" >&2 || true
      stop_one "$name" "$marker"
      die "$name did not answer on port $port within ${wait_seconds}s (log: .emulators/$name.log)"
    fi
    sleep 0.2
  done
  log "$name listening on 127.0.0.1:$port (pid $pid)"
}

stop_one() {
  local name="$1" marker="$2" pid
  if alive "$name" "$marker"; then
    pid="$(cat "$state/$name.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$state/$name.pid" "$state/$name.port"
}

write_env() {
  local tmp="$state/env.tmp"
  cat >"$tmp" <<ENV
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$(port_of dynalite)
export AWS_ENDPOINT_URL_SQS=http://127.0.0.1:$(port_of sqs)
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
ENV
  mv "$tmp" "$state/env"
}

cmd_start() {
  command -v curl >/dev/null || die "curl is not installed (apt-get install curl)"
  mkdir -p "$state"
  ensure_node_modules
  launch dynalite "$dynalite_port" dynalite \
    node "$tools/node_modules/dynalite/cli.js" --host 127.0.0.1 --port "$dynalite_port" \
    --createTableMs 0 --deleteTableMs 0 --updateTableMs 0
  launch sqs "$sqs_port" sqs-server.js \
    node "$tools/sqs-server.js" "$sqs_port"
  write_env
  log "ready; run: source .emulators/env"
}

cmd_stop() {
  stop_one dynalite dynalite
  stop_one sqs sqs-server.js
  rm -f "$state/env"
}

cmd_env() {
  [[ -f "$state/env" ]] || die "not started; run: scripts/emulators.sh start"
  # An env file left by a run that died is not a running emulator: saying
  # so lets with-emulators.sh know it must stop what it starts.
  alive dynalite dynalite && alive sqs sqs-server.js || die "not running (stale $state/env); run: scripts/emulators.sh start"
  cat "$state/env"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
env) cmd_env ;;
*) die "usage: $0 start|stop|env" ;;
esac
