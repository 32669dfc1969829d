#!/usr/bin/env bash
# Installs the Python original's runtime (benches/python/requirements.txt) into the project's
# .venv, for the cold-start bench's optional `python` role. Idempotent; separate from
# scripts/requirements.txt so that CI does not pay for it.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv
REQUIREMENTS=benches/python/requirements.txt
if ! command -v python3 >/dev/null; then
  echo "bench: no python3: the cold-start bench will skip the Python original" >&2
  exit 1
fi
stamp="$VENV/.bench-python-$(sha256sum "$REQUIREMENTS" | cut -c1-16)"
if [ -f "$stamp" ]; then
  exit 0
fi
[ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
touch "$stamp"
echo "bench: the Python original's runtime installed in $VENV"
