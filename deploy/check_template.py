#!/usr/bin/env python3
"""Check template.yaml (SAM) against what the Makefile deploys.

  check_template.py [TEMPLATE] [--transformed OUT.json --code-s3 s3://BUCKET/KEY --layer-s3 s3://BUCKET/KEY]

Expands the template with SAM's own translator (aws-sam-translator, installed with cfn-lint: the
same Globals merge, conditions and generated roles `sam deploy` gets), then checks the four
functions against deploy/deploy.mk's variants, with the parameter defaults in us-east-1:
function name, runtime, handler, architecture, memory, timeout, active tracing, the environment
(exactly make's ENV_JSON for that VARIANT), the layers (make's ADOT_LAYER_ARN), LoggingConfig (JSON,
make's log levels, the function's own AWS::Logs::LogGroup with LogRetentionDays = 14 days),
the role's policies (deploy/xray-otlp-policy.json for adot and xray-otlp), and the
rust-cargolambda build (CodeUri the workspace root; CargoLambda.toml's target = deploy/package.sh's).
Memory, timeout, tracing and environment must also agree with [package.metadata.lambda.deploy]
in Cargo.toml. Then runs cfn-lint on it when cfn-lint is installed (it is in .venv, via moto).

With --transformed, writes the expanded template (CloudFormation JSON, code and collector layer
at the given S3 locations) for `aws cloudformation create-stack` in `make deploy-test`.
"""

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # python < 3.11
    tomllib = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGION = "us-east-1"
ACCOUNT = "123456789012"

# Logical id -> deploy/deploy.mk variant, and the log group each function logs to.
FUNCTIONS = {
    "OtlpUdpFunction": ("otlp-udp", "OtlpUdpLogGroup", None),
    "SegmentsFunction": ("segments", "SegmentsLogGroup", "WithSegments"),
    "AdotFunction": ("adot", "AdotLogGroup", "WithAdot"),
    "XrayOtlpFunction": ("xray-otlp", "XrayOtlpLogGroup", "WithXrayOtlp"),
}
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
}


class CfnLoader(yaml.SafeLoader):
    pass


def construct_tag(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", construct_tag)

failures = []


def expect(description, actual, expected):
    if actual == expected:
        print(f"  ok   template: {description}")
    else:
        print(f"  FAIL template: {description}: {actual!r}, expected {expected!r}", file=sys.stderr)
        failures.append(description)


class Resolver:
    """Evaluates Ref and Fn::Sub with the parameter defaults; resource refs stay `ref:Name`."""

    def __init__(self, parameters):
        self.names = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"}
        self.names.update({k: str(v.get("Default")) for k, v in parameters.items()})

    def __call__(self, value):
        if isinstance(value, dict):
            if set(value) == {"Ref"}:
                return self.names.get(value["Ref"], f"ref:{value['Ref']}")
            if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
                return re.sub(r"\$\{([^}]+)\}", lambda m: self.names.get(m.group(1), m.group(0)), value["Fn::Sub"])
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        return value


def make_value(variable, *assignments):
    """A deploy/deploy.mk variable as make expands it (REGION=us-east-1 and `assignments`, e.g.
    VARIANT=adot), or None without make."""
    if not shutil.which("make"):
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    for name in ("VARIANT", "FUNCTION_NAME", "LOG_LEVEL", "SYSTEM_LOG_LEVEL", "COLLECTOR_CONFIG", variable):
        env.pop(name, None)
    out = subprocess.run(
        ["make", "--no-print-directory", "-s", "-f", "deploy/deploy.mk", f"REGION={REGION}", *assignments,
         "--eval", f"print-var: ; @echo '$({variable})'", "print-var"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )
    return out.stdout.strip() if out.returncode == 0 else None


class StubPolicyLoader:
    """SAM looks managed policy names up in IAM; these are the ones the template uses."""

    def load(self):
        return MANAGED_POLICIES


def sam_transform(template, code_uri, layer_uri):
    from samtranslator.translator.transform import transform

    document = copy.deepcopy(template)
    document["Globals"]["Function"]["CodeUri"] = code_uri
    for resource in document["Resources"].values():
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = layer_uri
    # The translator asks boto3 for the region; this check is always about us-east-1.
    os.environ["AWS_DEFAULT_REGION"] = REGION
    return transform(document, {}, StubPolicyLoader())


def package_target():
    """The `--target` deploy/package.sh builds for (x86_64, its default glibc)."""
    text = open(os.path.join(ROOT, "deploy/package.sh")).read()
    glibc = re.search(r'GLIBC_VERSION="\$\{GLIBC_VERSION:-([0-9.]+)\}"', text).group(1)
    triple = re.search(r"x86_64\) triple=([\w-]+)", text).group(1)
    return f"{triple}.{glibc}"


def role_policies(resources, function):
    role = resources.get(f"{function}Role", {}).get("Properties", {})
    managed = sorted(arn.rsplit("/", 1)[-1] for arn in role.get("ManagedPolicyArns", []))
    statements = [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    return managed, statements


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("template", nargs="?", default=os.path.join(ROOT, "template.yaml"))
    parser.add_argument("--transformed")
    parser.add_argument("--code-s3", default="s3://deploy-test/bootstrap.zip")
    parser.add_argument("--layer-s3", default="s3://deploy-test/collector-layer.zip")
    args = parser.parse_args()

    with open(args.template) as handle:
        template = yaml.load(handle, Loader=CfnLoader)
    expect("Transform", template.get("Transform"), "AWS::Serverless-2016-10-31")
    parameters = template.get("Parameters", {})
    resolve = Resolver(parameters)
    source = template["Resources"]
    functions = {k for k, v in source.items() if v["Type"] == "AWS::Serverless::Function"}
    expect("four functions, one per variant", sorted(functions), sorted(FUNCTIONS))
    expect("CodeUri is the workspace root", template["Globals"]["Function"].get("CodeUri"), ".")
    expect("LogRetentionDays defaults to 14", parameters.get("LogRetentionDays", {}).get("Default"), 14)
    # SAM builds every function with the default features, which leave segment documents out.
    expect("DeploySegments defaults to false (segment documents are opt-in)",
           parameters.get("DeploySegments", {}).get("Default"), "false")

    expanded = sam_transform(template, args.code_s3, args.layer_s3)
    resources = expanded["Resources"]
    with open(os.path.join(ROOT, "deploy/xray-otlp-policy.json")) as handle:
        otlp_statements = json.load(handle)["Statement"]
    # SAM passes no --target (it forwards BuildProperties.Binary only): CargoLambda.toml sets it.
    if tomllib:
        with open(os.path.join(ROOT, "CargoLambda.toml"), "rb") as handle:
            cargo_lambda_targets = tomllib.load(handle).get("build", {}).get("target")
        expect("CargoLambda.toml build.target = deploy/package.sh's x86_64 target",
               cargo_lambda_targets, [package_target()])
    levels = {"ApplicationLogLevel": make_value("LOG_LEVEL") or "INFO",
              "SystemLogLevel": make_value("SYSTEM_LOG_LEVEL") or "WARN"}

    for name, (variant, log_group, condition) in FUNCTIONS.items():
        label = f"{name} ({variant})"
        metadata = source.get(name, {}).get("Metadata", {})
        expect(f"{label} BuildMethod", metadata.get("BuildMethod"), "rust-cargolambda")
        expect(f"{label} BuildProperties", metadata.get("BuildProperties"), {"Binary": "bootstrap"})
        expect(f"{label} Condition", source.get(name, {}).get("Condition"), condition)
        props = resolve(resources.get(name, {}).get("Properties", {}))
        expect(f"{label} Runtime", props.get("Runtime"), "provided.al2023")
        expect(f"{label} Handler", props.get("Handler"), "bootstrap")
        expect(f"{label} Architectures", props.get("Architectures"), ["x86_64"])
        expect(f"{label} MemorySize", props.get("MemorySize"), 256)
        expect(f"{label} Timeout", props.get("Timeout"), 30)
        expect(f"{label} TracingConfig", props.get("TracingConfig"), {"Mode": "Active"})
        make_name = make_value(f"FUNCTION_{variant}")
        if make_name is not None:
            expect(f"{label} FunctionName = make's", props.get("FunctionName"), make_name)

        env_json = make_value("ENV_JSON", f"VARIANT={variant}")
        if env_json is not None:
            expected_env = json.loads(env_json)["Variables"]
            if variant == "adot":
                # The zip has the configurations in /var/task; `sam build` puts them in a layer.
                uri = expected_env["OPENTELEMETRY_COLLECTOR_CONFIG_URI"]
                expected_env["OPENTELEMETRY_COLLECTOR_CONFIG_URI"] = uri.replace("/var/task/", "/opt/")
            expect(f"{label} Environment = make's ENV_JSON (VARIANT={variant})",
                   props.get("Environment", {}).get("Variables"), expected_env)

        expect(f"{label} LoggingConfig", props.get("LoggingConfig"),
               {"LogFormat": "JSON", **levels, "LogGroup": f"ref:{log_group}"})
        group = resolve(resources.get(log_group, {}))
        expect(f"{label} log group", group,
               {"Type": "AWS::Logs::LogGroup", **({"Condition": condition} if condition else {}),
                "Properties": {"LogGroupName": f"/aws/lambda/{props.get('FunctionName')}",
                               "RetentionInDays": "14"}})

        # SAM renames a layer version's logical id with a content hash (CollectorConfigLayer1a2b...).
        layers = [re.sub(r"^(ref:CollectorConfigLayer)[0-9a-f]+$", r"\1", layer) for layer in props.get("Layers", [])]
        if variant == "adot":
            expect(f"{label} Layers = make's ADOT_LAYER_ARN + the collector configurations",
                   layers, [make_value("ADOT_LAYER_ARN") or
                            "arn:aws:lambda:us-east-1:901920570463:layer:aws-otel-collector-amd64-ver-0-117-0:1",
                            "ref:CollectorConfigLayer"])
        else:
            expect(f"{label} has no layers", layers, [])

        managed, statements = role_policies(resources, name)
        # SAM attaches AWSXrayWriteOnlyAccess for Tracing: Active (the daemon's permissions).
        expect(f"{label} managed policies", managed, ["AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"])
        expect(f"{label} inline statements = deploy/xray-otlp-policy.json",
               statements, otlp_statements if variant in ("adot", "xray-otlp") else [])

    layer = source.get("CollectorConfigLayer", {})
    expect("CollectorConfigLayer is built from deploy/collector-layer/ by make",
           (layer.get("Metadata", {}).get("BuildMethod"), layer.get("Properties", {}).get("ContentUri")),
           ("makefile", "deploy/collector-layer/"))

    cargo_toml = os.path.join(ROOT, "Cargo.toml")
    if tomllib and os.path.isfile(cargo_toml):
        with open(cargo_toml, "rb") as handle:
            deploy = tomllib.load(handle).get("package", {}).get("metadata", {}).get("lambda", {}).get("deploy", {})
        props = template["Globals"]["Function"]
        expect("Cargo.toml deploy.memory", deploy.get("memory"), props.get("MemorySize"))
        expect("Cargo.toml deploy.timeout", deploy.get("timeout"), props.get("Timeout"))
        expect("Cargo.toml deploy.tracing", str(deploy.get("tracing", "")).lower(), props.get("Tracing", "").lower())
        common = resolve(resources["OtlpUdpFunction"]["Properties"]).get("Environment", {}).get("Variables", {})
        expect("Cargo.toml deploy.env is in every variant's environment",
               {k: v for k, v in common.items() if k in deploy.get("env", {})}, deploy.get("env"))

    if args.transformed:
        with open(args.transformed, "w") as handle:
            json.dump(expanded, handle, indent=1)
        print(f"  ok   template: expanded by SAM's translator into {args.transformed}")

    lint = shutil.which("cfn-lint") or (
        os.path.join(ROOT, ".venv/bin/cfn-lint") if os.path.exists(os.path.join(ROOT, ".venv/bin/cfn-lint")) else None
    )
    if lint:
        result = subprocess.run([lint, args.template], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            print("  ok   template: cfn-lint reports nothing")
        else:
            print(result.stdout + result.stderr, file=sys.stderr)
            print(f"  FAIL template: cfn-lint exited {result.returncode}", file=sys.stderr)
            failures.append("cfn-lint")
    else:
        print("  note template: cfn-lint not installed, skipped")

    if failures:
        print(f"template: {len(failures)} check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
