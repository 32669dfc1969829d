#!/usr/bin/env bash
# `make run`: build the function, start the real Lambda Runtime API emulator (`cargo lambda
# watch`, on 127.0.0.1 only), invoke every sample event in events/, print each response, the
# function's logs and a trace timeline, then stop everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-9000}"
bash scripts/tools.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "==> building the function"
cargo build --bin bootstrap

workdir="$(mktemp -d)"
watch_log="$workdir/watch.log"
env_args=(
  --env-var PACKAGE_MANAGEMENT_SYSTEM=cargo
  --env-var OTEL_TRACES_EXPORTER=console
  --env-var AWS_LAMBDA_LOG_FORMAT=Text
)
if [ -n "${CHECKIP_URL:-}" ]; then env_args+=(--env-var "CHECKIP_URL=$CHECKIP_URL"); fi

echo "==> starting cargo lambda watch on 127.0.0.1:$PORT"
cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$PORT" --ignore-changes "${env_args[@]}" >"$watch_log" 2>&1 &
watch_pid=$!
cleanup() {
  kill "$watch_pid" 2>/dev/null || true
  pkill -P "$watch_pid" 2>/dev/null || true
  wait "$watch_pid" 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT
for _ in $(seq 1 300); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
  if ! kill -0 "$watch_pid" 2>/dev/null; then cat "$watch_log"; echo "cargo lambda watch exited" >&2; exit 1; fi
  sleep 0.1
done

for event in events/*.json; do
  echo
  echo "==> invoke $(basename "$event"): $(tr -d '\n' <"$event")"
  if out="$(cargo lambda invoke bootstrap --invoke-address 127.0.0.1 --invoke-port "$PORT" --data-file "$event" 2>&1)"; then
    echo "response: $out"
  else
    # cargo lambda prints a function error as "Error: <errorType>" and "× <errorMessage>".
    echo "error:    $(grep -m1 '^Error:' <<<"$out" | sed 's/^Error: //') — $(grep -m1 '×' <<<"$out" | sed 's/^ *× //')"
  fi
done
sleep 0.5

echo
echo "==> function logs (text format; EMF metric lines start with {)"
grep -E $'\t(TRACE|DEBUG|INFO|WARN|ERROR)\t|^\\{"' "$watch_log" || true
echo
echo "==> trace timeline (OTEL_TRACES_EXPORTER=console: offset, duration, span)"
grep -E '^trace |^  \+' "$watch_log" || true
