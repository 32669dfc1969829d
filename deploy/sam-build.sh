#!/usr/bin/env bash
# `make sam-build`: `sam build` of template.yaml. The functions use SAM's rust-cargolambda build
# method, which runs `cargo lambda build --release --bin bootstrap` in the workspace root;
# CargoLambda.toml gives it the target `make package` builds (x86_64, glibc 2.34), so after
# `make package` it reuses the same release artifacts instead of building again. This script
# checks that: every function's built bootstrap must be byte-identical to the packaged one (when
# there is one; else it must need no glibc newer than 2.34), and the collector configuration
# layer must hold both collector files.
# Environment: CARGO_TARGET_DIR, SAM_CLI_VERSION (installed into .venv on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
SAM_CLI_VERSION="${SAM_CLI_VERSION:-1.170.0}"
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
PACKAGED="$TARGET_DIR/lambda/bootstrap/bootstrap"
BUILD_DIR=.aws-sam/build

bash scripts/tools.sh
if ! .venv/bin/sam --version 2>/dev/null | grep -qF "$SAM_CLI_VERSION"; then
  echo "==> installing aws-sam-cli $SAM_CLI_VERSION into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check "aws-sam-cli==$SAM_CLI_VERSION"
fi
export PATH="$PWD/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0

echo "==> sam build (rust-cargolambda: cargo lambda build --release --bin bootstrap)"
start=$(date +%s)
# rust-cargolambda is a beta feature of SAM CLI: --beta-features opts in without a prompt.
sam build --beta-features --template-file template.yaml --build-dir "$BUILD_DIR"
echo "==> sam build took $(($(date +%s) - start)) s"

binaries=()
while IFS= read -r dir; do binaries+=("$BUILD_DIR/$dir/bootstrap"); done < <(
  python3 - "$BUILD_DIR/template.yaml" <<'PY'
import sys
sys.path.insert(0, "deploy")
import yaml
from check_template import CfnLoader
template = yaml.load(open(sys.argv[1]), Loader=CfnLoader)
for resource in template["Resources"].values():
    if resource["Type"] == "AWS::Serverless::Function":
        print(resource["Properties"]["CodeUri"])
PY
)
[ "${#binaries[@]}" -eq 4 ] || { echo "sam-build: expected 4 functions, got ${#binaries[@]}" >&2; exit 1; }
for binary in "${binaries[@]}"; do
  if [ -f "$PACKAGED" ]; then
    cmp -s "$binary" "$PACKAGED" || {
      echo "sam-build: $binary differs from $PACKAGED: sam build did not reuse the release build" >&2
      echo "           (is CargoLambda.toml's target the one deploy/package.sh builds?)" >&2
      exit 1; }
    echo "  ok   $binary = $PACKAGED (the same release build)"
  else
    python3 deploy/check_glibc.py "$binary" 2.34
  fi
done
for file in collector.yaml collector-awsxray.yaml; do
  cmp -s "$BUILD_DIR/CollectorConfigLayer/$file" "$file" || { echo "sam-build: the layer lacks $file" >&2; exit 1; }
  echo "  ok   CollectorConfigLayer has $file (/opt/$file in the adot function)"
done
echo "==> sam-build: OK; deploy with: sam deploy --guided --template-file $BUILD_DIR/template.yaml --capabilities CAPABILITY_IAM"
