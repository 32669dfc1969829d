#!/usr/bin/env python3
"""Checks a SigV4-signed HTTP request with botocore, a signer independent of the Rust one.

Reads one recorded request as JSON on stdin:
  {"method", "path", "headers": [[name, value], ...], "body_hex",
   "region", "service", "access_key_id", "secret_access_key", "session_token" (or null)}
rebuilds it as the server would (the headers listed in its SignedHeaders, the Host it was sent
with, its X-Amz-Date), signs it again with botocore's SigV4Auth and the given credentials, region
and service, and compares the two Authorization headers.

Exit status: 0 when they match, 1 on a mismatch (or a request that is not signed as X-Ray needs),
2 when botocore cannot be imported.
"""

import datetime
import json
import sys

try:
    import botocore.auth
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError as error:
    print(f"botocore is not available: {error}", file=sys.stderr)
    sys.exit(2)


def signed_header_names(authorization):
    for part in authorization.split(","):
        name, _, value = part.strip().partition("=")
        if name == "SignedHeaders":
            return value.split(";")
    return []


def fail(message):
    print(message, file=sys.stderr)
    return 1


def main():
    recorded = json.load(sys.stdin)
    headers = {}
    for name, value in recorded["headers"]:
        headers[name.lower()] = value

    authorization = headers.get("authorization")
    if not authorization:
        return fail("the request has no Authorization header")
    signed = signed_header_names(authorization)
    required = {"host", "x-amz-date", "content-type"}
    if recorded["session_token"]:
        required.add("x-amz-security-token")
    missing = required - set(signed)
    if missing:
        return fail(f"headers not signed: {sorted(missing)} (SignedHeaders={';'.join(signed)})")
    absent = [name for name in signed if name not in headers]
    if absent:
        return fail(f"signed headers that were not sent: {absent}")

    # botocore sets these two itself, from the time and credentials below.
    rebuilt = {
        name: headers[name]
        for name in signed
        if name not in ("x-amz-date", "x-amz-security-token")
    }
    request = AWSRequest(
        method=recorded["method"],
        url=f"http://{headers['host']}{recorded['path']}",
        data=bytes.fromhex(recorded["body_hex"]),
        headers=rebuilt,
    )
    # Sign as of the request's own X-Amz-Date: add_auth reads the clock through this function.
    signed_at = datetime.datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
    botocore.auth.get_current_datetime = lambda: signed_at
    credentials = Credentials(
        recorded["access_key_id"],
        recorded["secret_access_key"],
        recorded["session_token"],
    )
    SigV4Auth(credentials, recorded["service"], recorded["region"]).add_auth(request)

    expected = request.headers["Authorization"]
    if expected != authorization:
        return fail(f"signature mismatch\n  sent:     {authorization}\n  botocore: {expected}")
    if recorded["session_token"] and headers.get("x-amz-security-token") != recorded["session_token"]:
        return fail("X-Amz-Security-Token is not the session token")
    print("signature verified by botocore")
    return 0


if __name__ == "__main__":
    sys.exit(main())
