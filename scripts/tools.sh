#!/usr/bin/env bash
# Installs the local stand-ins into a project-local virtualenv (.venv): cargo-lambda (the Lambda
# Runtime API emulator), moto[server] (an AWS API emulator), the AWS CLI and botocore (the
# independent SigV4 signer tests/sigv4.rs checks signatures with). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
REQUIREMENTS=scripts/requirements.txt
stamp="$VENV/.installed-$(sha256sum "$REQUIREMENTS" | cut -c1-16)"
if [ -f "$stamp" ]; then
  exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
touch "$stamp"
echo "tools installed in $VENV: $("$VENV/bin/pip" list 2>/dev/null | grep -E '^(cargo-lambda|moto|awscli|botocore) ' | tr -s ' ' | paste -sd, -)"
