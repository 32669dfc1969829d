#!/usr/bin/env bash
# `make check-glibc`: fail if the packaged bootstrap needs a GLIBC_ symbol version newer than
# 2.34 (Amazon Linux 2023). Checks the binary inside the zip, i.e. exactly what gets deployed;
# the self-test makes sure the check can fail (the same binary against a 2.33 limit must fail,
# unless it needs no glibc 2.34 symbol at all).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
ZIP="${ZIP:-$TARGET_DIR/lambda/bootstrap/bootstrap.zip}"
if [ ! -f "$ZIP" ]; then
  echo "check-glibc: no $ZIP: run \`make package\` first" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("bootstrap", sys.argv[2])' "$ZIP" "$work"
python3 deploy/check_glibc.py "$work/bootstrap" 2.34
if command -v objdump >/dev/null; then
  echo "check-glibc: objdump -T agrees: max $(objdump -T "$work/bootstrap" | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tail -1)"
fi
# Self-test of the checker: every x86_64/aarch64 glibc symbol is versioned 2.2.5/2.17 or later,
# so a 2.0 limit must be reported as a failure (exit 1).
rc=0
python3 deploy/check_glibc.py "$work/bootstrap" 2.0 >/dev/null 2>&1 || rc=$?
if [ "$rc" -ne 1 ]; then
  echo "check-glibc: self-test failed: a 2.0 limit was not enforced (exit $rc)" >&2
  exit 1
fi
echo "check-glibc: OK"
