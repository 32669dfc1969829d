#!/usr/bin/env bash
# `make invoke` / `make invoke-error`: invoke.sh FUNCTION EVENT_FILE success|error
# Invokes the deployed function with the event file, prints the response (or the function error)
# and the last 4 KB of its log (--log-type Tail). Exits 1 if the outcome is not the expected one:
# `success` wants a response, `error` wants the function error that throwError triggers.
# AWS (the CLI) and AWS_ARGS (--region ..., --endpoint-url ...) come from deploy/deploy.mk.
set -euo pipefail
function_name="$1" event="$2" expect="$3"
AWS="${AWS:-aws}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
echo "==> invoke $function_name with $event: $(tr -d '\n' <"$event")"
# shellcheck disable=SC2086  # AWS_ARGS is a list of arguments
meta="$($AWS lambda $AWS_ARGS invoke --function-name "$function_name" --payload "fileb://$event" \
  --log-type Tail --output json "$out")"
python3 - "$meta" "$out" "$expect" <<'PY'
import base64, json, sys
meta, body, expect = json.loads(sys.argv[1]), open(sys.argv[2]).read(), sys.argv[3]
log = base64.b64decode(meta.get("LogResult", "")).decode(errors="replace")
if log:
    print("--- log tail ---")
    print(log.rstrip())
    print("----------------")
error = meta.get("FunctionError")
print(f"status {meta.get('StatusCode')}, {'function error (' + error + ')' if error else 'response'}:")
print(body)
if expect == "success" and error:
    sys.exit("invoke: the function returned an error")
if expect == "error" and not error:
    sys.exit("invoke: expected the function to report an error for this event")
PY
