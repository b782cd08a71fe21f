#!/usr/bin/env bash
# Runs a command with the local emulators up and their endpoints in the
# environment, then stops the emulators this script started.
#   scripts/with-emulators.sh go test ./...
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

started=0
if ! "$root/scripts/emulators.sh" env >/dev/null 2>&1; then
  started=1
fi
"$root/scripts/emulators.sh" start
cleanup() { if [[ $started == 1 ]]; then "$root/scripts/emulators.sh" stop; fi; }
trap cleanup EXIT
# shellcheck disable=SC1091
source "$root/.emulators/env"
"$@"
