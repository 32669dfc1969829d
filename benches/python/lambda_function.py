"""A port of the Python 3.8 original this project rewrites in Rust, kept as a cold-start baseline.

Run by the Lambda runtime interface client against the bench's stand-in Runtime API:
``python -m awslambdaric lambda_function.handler`` from this directory (awslambdaric imports the
handler's module from ``sys.path``, whose first entry is the working directory under ``-m``).
``LAMBDA_TASK_ROOT`` must be set too: it is how aws-xray-sdk knows it runs in Lambda and takes
the trace from ``_X_AMZN_TRACE_ID`` (which awslambdaric sets from each event's trace header).
"""

import json
import logging
import os
import platform
import random

import requests
from aws_xray_sdk.core import patch_all, xray_recorder

from worker import process_request

# Instrument every supported library (requests among them): each outbound call becomes a
# subsegment and carries the trace header.
patch_all()

logger = logging.getLogger()
logger.setLevel(logging.INFO)

# The execution context: module-level state lives as long as the execution environment.
STATIC_RANDOM = random.randint(1, 10_000)
INVOCATIONS = 0

RESERVED_VARIABLES = (
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_XRAY_CONTEXT_MISSING",
    "AWS_XRAY_DAEMON_ADDRESS",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "TZ",
)

# The original called checkip.amazonaws.com; the bench points this at a local stand-in.
CHECKIP_URL = os.environ.get("CHECKIP_URL", "http://checkip.amazonaws.com/")


def handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    logger.info(
        "execution context: STATIC_RANDOM is %s and this environment has served %s invocation(s)",
        STATIC_RANDOM,
        INVOCATIONS,
    )

    logger.info(
        "function context: %s (version %s, %s MB, %s) has %s ms to live; logs in %s / %s",
        context.function_name,
        context.function_version,
        context.memory_limit_in_mb,
        context.invoked_function_arn,
        context.get_remaining_time_in_millis(),
        context.log_group_name,
        context.log_stream_name,
    )

    reserved = {name: os.environ[name] for name in RESERVED_VARIABLES if name in os.environ}
    package_management_system = os.environ.get("PACKAGE_MANAGEMENT_SYSTEM", "pip")
    logger.info(
        "environment variables: %s; PACKAGE_MANAGEMENT_SYSTEM=%s",
        json.dumps(reserved),
        package_management_system,
    )

    logger.info("runtime information: %s", get_runtime_info())
    logger.info("public IP address: %s", public_ip())

    response = process_request(event, package_management_system)
    logger.info("request processed: %s", json.dumps(response))
    return response


def get_runtime_info():
    """The custom subsegment."""
    with xray_recorder.in_subsegment("getRuntimeInfo"):
        return "{} {} on {}".format(
            platform.python_implementation(), platform.python_version(), platform.platform()
        )


def public_ip():
    """A traced outbound call (patched by patch_all); never fails the invocation."""
    try:
        return requests.get(CHECKIP_URL, timeout=3).text.strip()
    except requests.RequestException as err:
        logger.warning("public IP lookup failed: %s", err)
        return "unable to get the public IP from {}: {}".format(CHECKIP_URL, err)
