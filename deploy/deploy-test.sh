#!/usr/bin/env bash
# `make deploy-test`: every deploy target of deploy/deploy.mk, for each of the four variants
# (otlp-udp, segments, adot, xray-otlp), against moto_server, an AWS API emulator, on 127.0.0.1
# (no AWS account, fake credentials), and the SAM template (checked against the Makefile,
# expanded by SAM's translator and created as a CloudFormation stack in moto). Self-contained: installs the tools,
# starts moto on a free port, always stops it. Each step checks its result and fails the script
# on a mismatch.
#
# What moto can and cannot do: it stores functions, layers, roles and trace segments and answers
# the API, but it cannot run a function without Docker. `make invoke` is therefore run against
# moto's Docker-less stand-in (it echoes the payload back), which checks the command and the
# payload plumbing only; the function itself is invoked by `make smoke-test` (the packaged zip,
# here) and by `make run` / `make test` (cargo lambda's Runtime API emulator).
#
# The deployment package: the real zip from `make package` when it exists (it is never rebuilt
# here), else a tiny stand-in zip, which is enough for moto since moto does not execute it.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

bash scripts/tools.sh
export PATH="$root/.venv/bin:$PATH"
AWS="$root/.venv/bin/aws"
TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
REAL_ZIP="$TARGET_DIR/lambda/bootstrap/bootstrap.zip"

# Fake credentials and a clean AWS configuration: nothing here may reach a real account.
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ROLE_ARN
# The Makefile's defaults are what is tested: drop overrides inherited from the caller.
unset MAKEFLAGS MFLAGS MAKELEVEL FUNCTION_NAME ADOT_FUNCTION_NAME SEGMENTS_FUNCTION_NAME \
  XRAY_OTLP_FUNCTION_NAME VARIANT REGION ENDPOINT ZIP LAMBDA_DIR ADOT_ACCOUNT ADOT_VERSION \
  ADOT_LAYER_VERSION ADOT_LAYER_ARN EVENT ERROR_EVENT FUNCTION_TIMEOUT FUNCTION_MEMORY \
  COLLECTOR_CONFIG LOG_LEVEL SYSTEM_LOG_LEVEL

work="$(mktemp -d)"
moto_pid=""
cleanup() {
  if [ -n "$moto_pid" ]; then
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port="${MOTO_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
endpoint="http://127.0.0.1:$port"
echo "==> starting moto_server on $endpoint"
MOTO_IAM_LOAD_MANAGED_POLICIES=true moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 300); do
  if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=1)' "$endpoint" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then cat "$work/moto.log" >&2; echo "moto_server exited" >&2; exit 1; fi
  sleep 0.1
done
export AWS_ENDPOINT_URL="$endpoint"
# moto's Docker-less Lambda backend (set before anything is created: it keeps its own state).
# It stores functions and layers like the default one; Invoke echoes the payload back.
python3 - "$endpoint" <<'PY'
import json, sys, urllib.request
request = urllib.request.Request(sys.argv[1] + "/moto-api/config", method="POST",
                                 data=json.dumps({"lambda": {"use_docker": False}}).encode())
urllib.request.urlopen(request, timeout=5).read()
PY

failures=0
ok() { echo "  ok   $*"; }
fail() { echo "  FAIL $*" >&2; failures=$((failures + 1)); exit 1; }
# m TARGET [VAR=value...]: a Makefile target against moto, quietly (-s: no command echo).
m() { make --no-print-directory -s "$@" AWS="$AWS"; }
# check JSON DESCRIPTION PYTHON_EXPRESSION EXPECTED: evaluates the expression over `d` (the
# parsed JSON) and compares it with EXPECTED (JSON).
check() {
  python3 - "$@" <<'PY' || fail "$2"
import json, sys
data, description, expression, expected = sys.argv[1:5]
d = json.loads(data)
try:
    actual = eval(expression, {"d": d})
except Exception as error:  # a missing key is a mismatch, not a crash
    actual = f"<{type(error).__name__}: {error}>"
if actual != json.loads(expected):
    print(f"  FAIL {description}: {expression} is {actual!r}, expected {expected}", file=sys.stderr)
    sys.exit(1)
print(f"  ok   {description}")
PY
}
sha256_b64() { python3 -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.sha256(open(sys.argv[1], "rb").read()).digest()).decode())' "$1"; }
# expect_failure DESCRIPTION PATTERN COMMAND...: the command must fail and print PATTERN.
expect_failure() {
  local description="$1" pattern="$2"
  shift 2
  local out rc=0
  out="$("$@" 2>&1)" || rc=$?
  if [ "$rc" -eq 0 ]; then fail "$description: the command succeeded"; fi
  grep -q -- "$pattern" <<<"$out" || { echo "$out" >&2; fail "$description: no '$pattern' in the output"; }
  ok "$description (exit $rc: $(grep -m1 -- "$pattern" <<<"$out" | sed 's/^ *//'))"
}

echo "==> deployment package"
if [ -f "$REAL_ZIP" ]; then
  ZIP="$REAL_ZIP"
  echo "  using the real zip from 'make package': $ZIP ($(stat -c %s "$ZIP") bytes)"
else
  ZIP="$work/stand-in.zip"
  printf '#!/bin/sh\necho "stand-in for moto: run make package for the real bootstrap" >&2\nexit 1\n' >"$work/bootstrap"
  python3 deploy/zip.py "$ZIP" "$work/bootstrap" collector.yaml collector-awsxray.yaml >/dev/null
  echo "  NOTE: no $REAL_ZIP ('make package' not run): using a stand-in zip (a shell script bootstrap)"
  echo "        for moto, which stores but never executes the code"
fi
zip_names="$(python3 -c 'import sys, zipfile; print(" ".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$ZIP")"
echo "  contents: $zip_names"
for file in collector.yaml collector-awsxray.yaml; do
  case " $zip_names " in
    *" $file "*) ok "the zip carries $file" ;;
    *) fail "$ZIP has no $file: run 'make package' again" ;;
  esac
done
# The same files plus a marker: different bytes, hence a different CodeSha256, for `make update`.
python3 - "$ZIP" "$work/updated.zip" <<'PY'
import shutil, sys, zipfile
shutil.copy(sys.argv[1], sys.argv[2])
with zipfile.ZipFile(sys.argv[2], "a") as archive:
    archive.writestr(zipfile.ZipInfo("deploy-test-marker", date_time=(1980, 1, 1, 0, 0, 0)), "update\n")
PY
# The same zip without collector.yaml, which the ADOT variant must refuse.
python3 - "$ZIP" "$work/no-collector.zip" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as source, zipfile.ZipFile(sys.argv[2], "w") as target:
    for info in source.infolist():
        if info.filename != "collector.yaml":
            target.writestr(info, source.read(info.filename))
PY

if [ "$ZIP" = "$REAL_ZIP" ]; then
  echo "==> the packaged bootstrap runs (make smoke-test)"
  python3 deploy/smoke_test.py "$ZIP" events/success.json events/throw-error.json || fail "smoke-test"
fi

echo "==> the SAM template (against the Makefile, expanded by SAM's translator, cfn-lint)"
python3 deploy/check_template.py template.yaml --transformed "$work/template.json" \
  --code-s3 s3://deploy-test-artifacts/bootstrap.zip --layer-s3 s3://deploy-test-artifacts/collector-layer.zip ||
  fail "template.yaml"

echo "==> clear messages for a missing AWS CLI, role, package or variant"
expect_failure "create without the AWS CLI" "AWS CLI" make --no-print-directory -s create AWS=/nonexistent/aws ZIP="$ZIP"
expect_failure "create without AWS_ROLE_ARN" "AWS_ROLE_ARN is not set" m create ZIP="$ZIP"
expect_failure "create without a package" "make package" m create ZIP="$work/missing.zip" AWS_ROLE_ARN=arn:aws:iam::123456789012:role/x
expect_failure "an unknown variant" "VARIANT must be one of: otlp-udp segments adot xray-otlp" m get VARIANT=xray

echo "==> what create and update send besides the environment: active tracing, JSON logs"
for target in create update; do
  dry="$(make --no-print-directory -s -n "$target" AWS="$AWS" ZIP="$ZIP" AWS_ROLE_ARN=arn:aws:iam::123456789012:role/x)"
  grep -q -- "--tracing-config Mode=Active" <<<"$dry" || fail "$target: no --tracing-config Mode=Active"
  grep -q -- "--logging-config LogFormat=JSON,ApplicationLogLevel=INFO,SystemLogLevel=WARN" <<<"$dry" ||
    fail "$target: no --logging-config LogFormat=JSON,ApplicationLogLevel=INFO,SystemLogLevel=WARN"
  ok "make $target sends --tracing-config Mode=Active --logging-config LogFormat=JSON,ApplicationLogLevel=INFO,SystemLogLevel=WARN"
done
echo "  note: moto does not store LoggingConfig, so it is checked on the command line only"

echo "==> IAM role and the stand-in ADOT collector layer (moto needs both to exist first)"
cat >"$work/trust.json" <<'EOF'
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
EOF
role_arn="$("$AWS" iam create-role --role-name rust-hello-world --assume-role-policy-document "file://$work/trust.json" --query Role.Arn --output text)"
for policy in service-role/AWSLambdaBasicExecutionRole AWSXRayDaemonWriteAccess; do
  "$AWS" iam attach-role-policy --role-name rust-hello-world --policy-arn "arn:aws:iam::aws:policy/$policy"
done
"$AWS" iam put-role-policy --role-name rust-hello-world --policy-name xray-otlp \
  --policy-document file://deploy/xray-otlp-policy.json
policies="$("$AWS" iam list-attached-role-policies --role-name rust-hello-world --output json)"
check "$policies" "role has AWSLambdaBasicExecutionRole and AWSXRayDaemonWriteAccess" \
  'sorted(p["PolicyName"] for p in d["AttachedPolicies"])' '["AWSLambdaBasicExecutionRole", "AWSXRayDaemonWriteAccess"]'
inline="$("$AWS" iam get-role-policy --role-name rust-hello-world --policy-name xray-otlp --output json)"
check "$inline" "role has deploy/xray-otlp-policy.json (for adot and xray-otlp)" \
  'sorted(a for s in d["PolicyDocument"]["Statement"] for a in s["Action"])' '["xray:PutSpans", "xray:PutSpansForIndexing"]'
export AWS_ROLE_ARN="$role_arn"
ok "role $role_arn"
mkdir -p "$work/layer/extensions"
printf '#!/bin/sh\nexit 0\n' >"$work/layer/extensions/collector"
(cd "$work/layer" && python3 -c 'import zipfile; z = zipfile.ZipFile("../layer.zip", "w"); z.write("extensions/collector"); z.close()')
layer="$("$AWS" lambda publish-layer-version --layer-name aws-otel-collector-amd64-ver-0-117-0 \
  --zip-file "fileb://$work/layer.zip" --compatible-runtimes provided.al2023 --compatible-architectures x86_64 \
  --output json)"
layer_arn="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["LayerVersionArn"])' "$layer")"
layer_version="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["Version"])' "$layer")"
ok "layer $layer_arn"
# The layer ARN is built from these (moto's account instead of AWS's 901920570463).
adot=(ADOT_ACCOUNT=123456789012 ADOT_VERSION=0-117-0 ADOT_LAYER_VERSION="$layer_version")

sha="$(sha256_b64 "$ZIP")"
updated_sha="$(sha256_b64 "$work/updated.zip")"
check_config() { # check_config JSON (get-function output) LABEL
  local c="$1"
  check "$c" "$2: State Active" 'd["Configuration"]["State"]' '"Active"'
  check "$c" "$2: Runtime provided.al2023" 'd["Configuration"]["Runtime"]' '"provided.al2023"'
  check "$c" "$2: Handler bootstrap" 'd["Configuration"]["Handler"]' '"bootstrap"'
  check "$c" "$2: Architectures [x86_64]" 'd["Configuration"]["Architectures"]' '["x86_64"]'
  check "$c" "$2: TracingConfig Mode Active" 'd["Configuration"]["TracingConfig"]["Mode"]' '"Active"'
  check "$c" "$2: MemorySize 256" 'd["Configuration"]["MemorySize"]' '256'
  check "$c" "$2: Timeout 30" 'd["Configuration"]["Timeout"]' '30'
  check "$c" "$2: Role" 'd["Configuration"]["Role"]' "\"$role_arn\""
}

# What each variant must look like: its function name, exactly its environment, its layers.
declare -A name env layers
name[otlp-udp]=rust-hello-world
name[segments]=rust-hello-world-segments
name[adot]=rust-hello-world-adot
name[xray-otlp]=rust-hello-world-xray-otlp
env[otlp-udp]='{"PACKAGE_MANAGEMENT_SYSTEM": "cargo", "OTEL_TRACES_EXPORTER": "otlp"}'
env[segments]='{"PACKAGE_MANAGEMENT_SYSTEM": "cargo", "OTEL_TRACES_EXPORTER": "xray"}'
env[adot]='{"PACKAGE_MANAGEMENT_SYSTEM": "cargo", "OPENTELEMETRY_COLLECTOR_CONFIG_URI": "/var/task/collector.yaml", "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://localhost:4318/v1/traces"}'
env[xray-otlp]='{"PACKAGE_MANAGEMENT_SYSTEM": "cargo", "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://xray.us-east-1.amazonaws.com/v1/traces"}'
layers[otlp-udp]='[]'
layers[segments]='[]'
layers[adot]="[\"$layer_arn\"]"
layers[xray-otlp]='[]'
variant_checks() { # variant_checks JSON VARIANT LABEL
  check_config "$1" "$3"
  check "$1" "$3: Environment (exactly the variables this path needs)" 'd["Configuration"]["Environment"]["Variables"]' "${env[$2]}"
  check "$1" "$3: Layers" '[l["Arn"] for l in d["Configuration"].get("Layers", [])]' "${layers[$2]}"
}

echo "==> make create (the default variant, otlp-udp)"
out="$(m create ZIP="$ZIP")" || fail "make create"
check "$out" "create returns the function name" 'd["FunctionName"]' '"rust-hello-world"'
check "$out" "create uploaded this zip (CodeSha256)" 'd["CodeSha256"]' "\"$sha\""

echo "==> make get"
got="$(m get)" || fail "make get"
variant_checks "$got" otlp-udp "otlp-udp"

echo "==> make list"
listed="$(m list)" || fail "make list"
check "$listed" "list shows rust-hello-world on provided.al2023" \
  '[f["Runtime"] for f in d if f["FunctionName"] == "rust-hello-world"]' '["provided.al2023"]'

echo "==> make update (a zip with different bytes)"
m update ZIP="$work/updated.zip" >/dev/null || fail "make update"
got="$(m get)" || fail "make get"
check "$got" "update replaced the code (CodeSha256 of the new zip)" 'd["Configuration"]["CodeSha256"]' "\"$updated_sha\""
check "$got" "update: LastUpdateStatus Successful" 'd["Configuration"]["LastUpdateStatus"]' '"Successful"'
variant_checks "$got" otlp-udp "otlp-udp after update"

echo "==> make invoke (moto's Docker-less stand-in: echoes the payload; the function does not run)"
out="$(m invoke)" || { echo "$out" >&2; fail "make invoke"; }
python3 - "$out" <<'PY' || fail "make invoke: the payload did not come back"
import json, sys
body = sys.argv[1].split(":\n", 1)[1].strip()
assert json.loads(body) == json.load(open("events/success.json")), body
PY
ok "make invoke sent events/success.json (moto echoed it back: $(tr -d '\n' <events/success.json))"
expect_failure "make invoke-error fails when no function error comes back" "expected the function to report an error" m invoke-error

echo "==> the other variants: make create-<variant> / get-<variant> / update-<variant>"
expect_failure "create-adot refuses a zip without collector.yaml" "has no collector.yaml" m create-adot ZIP="$work/no-collector.zip" "${adot[@]}"
for variant in segments adot xray-otlp; do
  out="$(m "create-$variant" ZIP="$ZIP" "${adot[@]}")" || fail "make create-$variant"
  check "$out" "create-$variant returns ${name[$variant]}" 'd["FunctionName"]' "\"${name[$variant]}\""
  got="$(m "get-$variant")" || fail "make get-$variant"
  variant_checks "$got" "$variant" "$variant"
  m "update-$variant" ZIP="$work/updated.zip" "${adot[@]}" >/dev/null || fail "make update-$variant"
  got="$(m get VARIANT="$variant")" || fail "make get VARIANT=$variant"
  check "$got" "update-$variant replaced the code" 'd["Configuration"]["CodeSha256"]' "\"$updated_sha\""
  variant_checks "$got" "$variant" "$variant after update"
done
listed="$(m list)" || fail "make list"
check "$listed" "list shows the four functions" 'sorted(f["FunctionName"] for f in d)' \
  '["rust-hello-world", "rust-hello-world-adot", "rust-hello-world-segments", "rust-hello-world-xray-otlp"]'

echo "==> adot with the awsxray collector configuration (accounts without Transaction Search)"
m update-adot ZIP="$ZIP" COLLECTOR_CONFIG=collector-awsxray.yaml "${adot[@]}" >/dev/null ||
  fail "make update-adot COLLECTOR_CONFIG=collector-awsxray.yaml"
got="$(m get-adot)" || fail "make get-adot"
check "$got" "adot: OPENTELEMETRY_COLLECTOR_CONFIG_URI=/var/task/collector-awsxray.yaml" \
  'd["Configuration"]["Environment"]["Variables"]["OPENTELEMETRY_COLLECTOR_CONFIG_URI"]' '"/var/task/collector-awsxray.yaml"'
m update-adot ZIP="$ZIP" "${adot[@]}" >/dev/null || fail "make update-adot"
got="$(m get-adot)" || fail "make get-adot"
variant_checks "$got" adot "adot back on collector.yaml"

echo "==> cargo lambda deploy (settings from [package.metadata.lambda.deploy] in Cargo.toml, variables per variant)"
if [ -f "$TARGET_DIR/lambda/bootstrap/bootstrap" ]; then
  for variant in otlp-udp segments adot xray-otlp; do
    m cargo-deploy FUNCTION_NAME=rust-hello-world-cargo-lambda VARIANT="$variant" "${adot[@]}" >"$work/cargo-lambda.log" 2>&1 ||
      { cat "$work/cargo-lambda.log" >&2; fail "make cargo-deploy VARIANT=$variant"; }
    got="$(m get FUNCTION_NAME=rust-hello-world-cargo-lambda VARIANT="$variant")" || fail "get (cargo lambda deploy, $variant)"
    check_config "$got" "cargo lambda deploy VARIANT=$variant"
    check "$got" "cargo lambda deploy VARIANT=$variant: Environment" 'd["Configuration"]["Environment"]["Variables"]' "${env[$variant]}"
    m delete FUNCTION_NAME=rust-hello-world-cargo-lambda VARIANT="$variant" >/dev/null || fail "delete (cargo lambda deploy, $variant)"
  done
else
  echo "  skipped: no $TARGET_DIR/lambda/bootstrap/bootstrap (run 'make package' first)"
fi

echo "==> X-Ray API: put-trace-segments, then batch-get-traces"
python3 deploy/xray_segments.py input - >"$work/segments.json" || fail "segment documents"
"$AWS" xray put-trace-segments --cli-input-json "file://$work/segments.json" --output json >"$work/put.json" || fail "put-trace-segments"
python3 deploy/xray_segments.py check-put "$work/put.json" || fail "put-trace-segments"
mapfile -t trace_ids < <(python3 deploy/xray_segments.py trace-ids "$work/segments.json")
"$AWS" xray batch-get-traces --trace-ids "${trace_ids[@]}" --output json >"$work/get.json" || fail "batch-get-traces"
python3 deploy/xray_segments.py check-get "$work/segments.json" "$work/get.json" || fail "batch-get-traces"
# `make traces` lists the last 10 minutes: put a fresh synthetic subsegment and look for it.
python3 deploy/xray_segments.py input synthetic >"$work/recent.json" || fail "segment documents"
"$AWS" xray put-trace-segments --cli-input-json "file://$work/recent.json" --output json >"$work/put.json" || fail "put-trace-segments"
python3 deploy/xray_segments.py check-put "$work/put.json" || fail "put-trace-segments"
recent_id="$(python3 deploy/xray_segments.py trace-ids "$work/recent.json")"
"$AWS" xray batch-get-traces --trace-ids "$recent_id" --output json >"$work/get.json" || fail "batch-get-traces"
python3 deploy/xray_segments.py check-get "$work/recent.json" "$work/get.json" || fail "batch-get-traces"
traces="$(m traces)" || fail "make traces"
check "$traces" "make traces lists the new trace, with its error" "[t['HasError'] for t in d if t['Id'] == '$recent_id']" '[true]'

echo "==> make delete / delete-<variant>"
m delete >/dev/null || fail "make delete"
for variant in segments adot xray-otlp; do
  m "delete-$variant" >/dev/null || fail "make delete-$variant"
done
expect_failure "get after delete" "ResourceNotFoundException" m get
listed="$(m list)" || fail "make list"
check "$listed" "list is empty after delete" 'd' '[]'

echo "==> the SAM template as a CloudFormation stack (expanded by SAM's translator, created in moto)"
# What `sam deploy` would upload: the code and the collector configuration layer, in S3.
python3 - "$work/collector-layer.zip" collector.yaml collector-awsxray.yaml <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as layer:
    for path in sys.argv[2:]:
        layer.write(path, os.path.basename(path))
PY
"$AWS" s3 mb s3://deploy-test-artifacts >/dev/null || fail "s3 mb"
"$AWS" s3 cp "$ZIP" s3://deploy-test-artifacts/bootstrap.zip >/dev/null || fail "s3 cp (code)"
"$AWS" s3 cp "$work/collector-layer.zip" s3://deploy-test-artifacts/collector-layer.zip >/dev/null || fail "s3 cp (layer)"
# All four functions: segments is off by default (SAM builds with the default features, which
# leave segment documents out); a team with a segments build turns it on, as here.
"$AWS" cloudformation create-stack --stack-name rust-hello-world --template-body "file://$work/template.json" \
  --capabilities CAPABILITY_IAM --parameters ParameterKey=AdotLayerAccount,ParameterValue=123456789012 \
  ParameterKey=AdotLayerVersion,ParameterValue="$layer_version" \
  ParameterKey=DeploySegments,ParameterValue=true >/dev/null || fail "create-stack"
"$AWS" cloudformation wait stack-create-complete --stack-name rust-hello-world || fail "stack-create-complete"
stack="$("$AWS" cloudformation describe-stacks --stack-name rust-hello-world --output json)"
check "$stack" "stack CREATE_COMPLETE" 'd["Stacks"][0]["StackStatus"]' '"CREATE_COMPLETE"'
for variant in otlp-udp segments adot xray-otlp; do
  got="$(m get VARIANT="$variant")" || fail "get VARIANT=$variant (stack)"
  expected="${env[$variant]}"
  # In the stack the adot configurations come from the CollectorConfigLayer, at /opt.
  if [ "$variant" = adot ]; then expected="${expected//\/var\/task\//\/opt\/}"; fi
  check "$got" "stack: ${name[$variant]} Environment" 'd["Configuration"]["Environment"]["Variables"]' "$expected"
done
groups="$("$AWS" logs describe-log-groups --log-group-name-prefix /aws/lambda/rust-hello-world --output json)"
check "$groups" "stack: one log group per function, kept 14 days" \
  'sorted([g["logGroupName"], g.get("retentionInDays")] for g in d["logGroups"])' \
  '[["/aws/lambda/rust-hello-world", 14], ["/aws/lambda/rust-hello-world-adot", 14], ["/aws/lambda/rust-hello-world-segments", 14], ["/aws/lambda/rust-hello-world-xray-otlp", 14]]'
role="$("$AWS" cloudformation describe-stack-resource --stack-name rust-hello-world --logical-resource-id XrayOtlpFunctionRole \
  --query StackResourceDetail.PhysicalResourceId --output text)" || fail "XrayOtlpFunctionRole"
role_policies="$("$AWS" iam list-role-policies --role-name "$role" --output json)" || fail "list-role-policies"
policy_name="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["PolicyNames"][0])' "$role_policies")"
inline="$("$AWS" iam get-role-policy --role-name "$role" --policy-name "$policy_name" --output json)" || fail "get-role-policy"
# moto returns the document of a stack-made role policy as the text of a Python dict.
document="$(python3 -c 'import ast, json, sys
doc = json.loads(sys.argv[1])["PolicyDocument"]
print(json.dumps(ast.literal_eval(doc) if isinstance(doc, str) else doc))' "$inline")"
check "$document" "stack: the xray-otlp role may xray:PutSpans" \
  'sorted(a for s in d["Statement"] for a in s["Action"])' '["xray:PutSpans", "xray:PutSpansForIndexing"]'
echo "  note: moto's CloudFormation does not keep TracingConfig, Layers or LoggingConfig; check_template.py"
echo "        checks them in the expanded template"
"$AWS" cloudformation delete-stack --stack-name rust-hello-world || fail "delete-stack"
"$AWS" cloudformation wait stack-delete-complete --stack-name rust-hello-world || fail "stack-delete-complete"
listed="$(m list)" || fail "make list"
check "$listed" "no function left after delete-stack" 'd' '[]'

if [ "$ZIP" = "$REAL_ZIP" ]; then
  [ "$(sha256_b64 "$ZIP")" = "$sha" ] || fail "the package zip changed during the test"
  ok "the package zip is unchanged"
fi

echo "==> deploy-test: OK ($([ "$ZIP" = "$REAL_ZIP" ] && echo "real zip" || echo "stand-in zip"); moto_server $endpoint stopped on exit)"
