#!/usr/bin/env bash
# `make package`: ONE release build of the `bootstrap` binary for provided.al2023, zipped with
# the ADOT collector configurations ($COLLECTOR_FILES, when present) into $ZIP, then the glibc
# check and the size report.
#
# The build is `cargo lambda build`, which links with zig against glibc $GLIBC_VERSION (2.34 =
# Amazon Linux 2023), so the binary runs on Lambda whatever glibc this machine has. Cargo's
# release profile (Cargo.toml) gives LTO, one codegen unit, strip, panic = "unwind".
# Environment: ARCH (x86_64 | arm64), GLIBC_VERSION, CARGO_TARGET_DIR, ZIP, MAX_ZIP_BYTES,
# COLLECTOR_FILES (deploy/deploy.mk passes its list).
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH="${ARCH:-x86_64}"
GLIBC_VERSION="${GLIBC_VERSION:-2.34}"
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
LAMBDA_DIR="$TARGET_DIR/lambda"
ZIP="${ZIP:-$LAMBDA_DIR/bootstrap/bootstrap.zip}"
MAX_ZIP_BYTES="${MAX_ZIP_BYTES:-3145728}"
COLLECTOR_FILES="${COLLECTOR_FILES:-collector.yaml collector-awsxray.yaml}"
# Cargo features on top of the package's defaults: `xray-segments` for the segments variant
# (segment documents are opt-in; the default build is OTLP only, see Cargo.toml).
FEATURES="${FEATURES:-}"
feature_args=()
if [ -n "$FEATURES" ]; then
  feature_args=(--features "$FEATURES")
fi
case "$ARCH" in
  x86_64) triple=x86_64-unknown-linux-gnu ;;
  arm64 | aarch64) triple=aarch64-unknown-linux-gnu ;;
  *) echo "package: ARCH must be x86_64 or arm64, not '$ARCH'" >&2; exit 2 ;;
esac

bash scripts/tools.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "==> cargo lambda build --release --target $triple.$GLIBC_VERSION ${feature_args[*]} (zig linker, glibc $GLIBC_VERSION)"
cargo lambda build --release --target "$triple.$GLIBC_VERSION" --bin bootstrap --lambda-dir "$LAMBDA_DIR" "${feature_args[@]}"
binary="$LAMBDA_DIR/bootstrap/bootstrap"

extras=()
for file in $COLLECTOR_FILES; do
  if [ -f "$file" ]; then
    extras+=("$file")
  else
    echo "package: note: $file not found at the repository root; the zip will not contain it," >&2
    echo "         so the adot variant cannot use it (create-adot COLLECTOR_CONFIG=$file refuses the zip)." >&2
  fi
done
echo "==> zip $ZIP"
mkdir -p "$(dirname "$ZIP")"
python3 deploy/zip.py "$ZIP" "$binary" "${extras[@]}"

echo "==> glibc check (provided.al2023 has glibc 2.34)"
python3 deploy/check_glibc.py "$binary" 2.34

size=$(stat -c %s "$ZIP")
echo "==> $ZIP: $size bytes ($(python3 -c "print(f'{$size/1048576:.2f}')") MiB), binary $(stat -c %s "$binary") bytes"
if [ "$size" -gt "$MAX_ZIP_BYTES" ]; then
  echo "package: warning: the zip is larger than the $MAX_ZIP_BYTES-byte target" >&2
fi
