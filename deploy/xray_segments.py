#!/usr/bin/env python3
"""Segment documents for the X-Ray API check in `make deploy-test`.

  xray_segments.py input FILE|-|synthetic -> prints {"TraceSegmentDocuments": [...]} for
                                        `aws xray put-trace-segments --cli-input-json`
  xray_segments.py check-put OUT     -> asserts put-trace-segments left nothing unprocessed
  xray_segments.py trace-ids INPUT   -> the distinct trace ids of the documents, one a line
  xray_segments.py check-get INPUT OUT -> asserts batch-get-traces returned every document
                                        unchanged, under the right trace id

The documents come from tests/fixtures/xray-segment.json when it exists (one document or a JSON
array of them, as captured from the function), else a synthetic subsegment of the shape the
function emits. Each one is validated against the X-Ray segment document rules first
(https://docs.aws.amazon.com/xray/latest/devguide/xray-api-segmentdocuments.html): moto only
checks a few required fields, so the stricter checks live here.
"""

import json
import os
import re
import secrets
import sys
import time

FIXTURE = "tests/fixtures/xray-segment.json"
TRACE_ID = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
SEGMENT_ID = re.compile(r"^[0-9a-f]{16}$")
NAME = re.compile(r"^[\w.:/%&#=+\\\-@ ]{1,200}$")


def synthetic():
    now = time.time()
    return [
        {
            "name": "rust-hello-world",
            "id": secrets.token_hex(8),
            "trace_id": f"1-{int(now):08x}-{secrets.token_hex(12)}",
            "parent_id": secrets.token_hex(8),
            "type": "subsegment",
            "start_time": round(now - 0.25, 6),
            "end_time": round(now, 6),
            "annotations": {"ColdStart": True},
            "error": True,
            "cause": {
                "exceptions": [
                    {
                        "id": secrets.token_hex(8),
                        "type": "InvalidEvent",
                        "message": "age must be a non-negative integer",
                    }
                ]
            },
        }
    ]


def load(path):
    if path == "synthetic":
        return [json.dumps(d, separators=(",", ":")) for d in synthetic()], "a synthetic subsegment"
    if path == "-":
        if os.path.isfile(FIXTURE):
            with open(FIXTURE) as handle:
                data = json.load(handle)
            source = FIXTURE
        else:
            data, source = synthetic(), "a synthetic subsegment (no " + FIXTURE + ")"
    else:
        with open(path) as handle:
            data, source = json.load(handle), path
    docs = data if isinstance(data, list) else [data]
    return [doc if isinstance(doc, str) else json.dumps(doc, separators=(",", ":")) for doc in docs], source


def validate(raw):
    doc = json.loads(raw)
    problems = []
    for field in ("name", "id", "trace_id", "start_time"):
        if field not in doc:
            problems.append(f"missing {field}")
    if "end_time" not in doc and doc.get("in_progress") is not True:
        problems.append("needs end_time or in_progress: true")
    if "id" in doc and not SEGMENT_ID.match(str(doc["id"])):
        problems.append(f"id {doc['id']!r} is not 16 hex digits")
    if "trace_id" in doc and not TRACE_ID.match(str(doc["trace_id"])):
        problems.append(f"trace_id {doc['trace_id']!r} is not 1-<8 hex>-<24 hex>")
    if "name" in doc and not NAME.match(str(doc["name"])):
        problems.append(f"name {doc['name']!r} has characters X-Ray rejects or is too long")
    if "parent_id" in doc and not SEGMENT_ID.match(str(doc["parent_id"])):
        problems.append(f"parent_id {doc['parent_id']!r} is not 16 hex digits")
    if doc.get("type") == "subsegment" and "parent_id" not in doc:
        problems.append("an independently sent subsegment needs parent_id")
    for field in ("start_time", "end_time"):
        if field in doc and not isinstance(doc[field], (int, float)):
            problems.append(f"{field} is not a number of epoch seconds")
    if isinstance(doc.get("start_time"), (int, float)) and isinstance(doc.get("end_time"), (int, float)):
        if doc["end_time"] < doc["start_time"]:
            problems.append("end_time is before start_time")
    annotations = doc.get("annotations", {})
    for key, value in annotations.items():
        if not re.match(r"^[A-Za-z0-9_]{1,500}$", key):
            problems.append(f"annotation key {key!r}: only letters, digits and _")
        if not isinstance(value, (str, int, float, bool)):
            problems.append(f"annotation {key!r}: value must be a string, number or boolean")
    cause = doc.get("cause")
    if cause is not None and not isinstance(cause, (str, dict)):
        problems.append("cause must be an exception id (string) or an object")
    return doc, problems


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "input":
        docs, source = load(args[0])
        failed = False
        for raw in docs:
            doc, problems = validate(raw)
            label = f"{doc.get('type', 'segment')} {doc.get('name')!r} {doc.get('id')} in {doc.get('trace_id')}"
            for problem in problems:
                print(f"xray: {label}: {problem}", file=sys.stderr)
            failed |= bool(problems)
        if failed:
            sys.exit("xray: the segment documents do not follow the X-Ray segment document rules")
        print(f"xray: {len(docs)} document(s) from {source} pass the segment document rules", file=sys.stderr)
        print(json.dumps({"TraceSegmentDocuments": docs}))
    elif command == "check-put":
        result = json.load(open(args[0]))
        if result.get("UnprocessedTraceSegments"):
            sys.exit(f"xray: put-trace-segments rejected: {result['UnprocessedTraceSegments']}")
        print("  ok   put-trace-segments: no unprocessed segments")
    elif command == "trace-ids":
        docs = json.load(open(args[0]))["TraceSegmentDocuments"]
        print("\n".join(sorted({json.loads(d)["trace_id"] for d in docs})))
    elif command == "check-get":
        docs = json.load(open(args[0]))["TraceSegmentDocuments"]
        result = json.load(open(args[1]))
        if result.get("UnprocessedTraceIds"):
            sys.exit(f"xray: batch-get-traces did not find {result['UnprocessedTraceIds']}")
        returned = {
            (trace["Id"], segment["Id"]): segment["Document"]
            for trace in result.get("Traces", [])
            for segment in trace.get("Segments", [])
        }
        for raw in docs:
            doc = json.loads(raw)
            got = returned.get((doc["trace_id"], doc["id"]))
            if got is None:
                sys.exit(f"xray: segment {doc['id']} of trace {doc['trace_id']} was not returned")
            if json.loads(got) != doc:
                sys.exit(f"xray: segment {doc['id']} came back changed:\n{got}\n!=\n{raw}")
        print(f"  ok   batch-get-traces: {len(docs)} document(s) returned unchanged under their trace ids")
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
