#!/usr/bin/env python3
"""Check template.yaml (SAM) against what the Makefile deploys: check_template.py [TEMPLATE]

Parses the template with PyYAML (a loader that understands the CloudFormation short tags such as
!Ref and !Sub), merges Globals into each function as SAM does and checks both variants: runtime,
handler, architecture, memory, timeout, active tracing, environment, the ADOT layer ARN (resolved
with the parameter defaults in us-east-1, compared with deploy/deploy.mk's default), and that
memory, timeout, tracing and environment agree with [package.metadata.lambda.deploy] in
Cargo.toml. Then runs cfn-lint on it when cfn-lint is installed (it is in .venv, via moto).
"""

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


def effective(globals_, properties):
    """SAM's Globals merge: resource properties win; Environment.Variables maps are merged."""
    merged = dict(globals_)
    for key, value in properties.items():
        if key == "Environment" and "Environment" in merged:
            variables = dict(merged["Environment"].get("Variables", {}))
            variables.update(value.get("Variables", {}))
            merged["Environment"] = {"Variables": variables}
        else:
            merged[key] = value
    return merged


def resolve_sub(value, parameters, region):
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = value["Fn::Sub"]
        names = {"AWS::Region": region, **{k: str(v.get("Default")) for k, v in parameters.items()}}
        return re.sub(r"\$\{([^}]+)\}", lambda m: names[m.group(1)], text)
    return value


def make_default(variable):
    """The default value of a deploy/deploy.mk variable, from make itself (None without make)."""
    if not shutil.which("make"):
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.pop(variable, None)
    out = subprocess.run(
        ["make", "--no-print-directory", "-s", "-f", "deploy/deploy.mk", "REGION=us-east-1",
         "--eval", f"print-var: ; @echo $({variable})", "print-var"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )
    return out.stdout.strip() if out.returncode == 0 else None


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "template.yaml")
    with open(path) as handle:
        template = yaml.load(handle, Loader=CfnLoader)
    expect("Transform", template.get("Transform"), "AWS::Serverless-2016-10-31")
    parameters = template.get("Parameters", {})
    globals_ = template.get("Globals", {}).get("Function", {})
    resources = template["Resources"]
    functions = {k: v for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
    expect("two functions", sorted(functions), ["HelloFunction", "HelloFunctionAdot"])

    base_env = {"PACKAGE_MANAGEMENT_SYSTEM": "cargo"}
    adot_env = {
        **base_env,
        "OPENTELEMETRY_COLLECTOR_CONFIG_URI": "/var/task/collector.yaml",
        "OTEL_TRACES_EXPORTER": "otlp",
    }
    make_arn = make_default("ADOT_LAYER_ARN")
    make_name = make_default("FUNCTION_NAME")
    for name, env in (("HelloFunction", base_env), ("HelloFunctionAdot", adot_env)):
        props = effective(globals_, functions.get(name, {}).get("Properties", {}))
        expect(f"{name} Runtime", props.get("Runtime"), "provided.al2023")
        expect(f"{name} Handler", props.get("Handler"), "bootstrap")
        expect(f"{name} Architectures", props.get("Architectures"), ["x86_64"])
        expect(f"{name} MemorySize", props.get("MemorySize"), 256)
        expect(f"{name} Timeout", props.get("Timeout"), 30)
        expect(f"{name} Tracing", props.get("Tracing"), "Active")
        expect(f"{name} CodeUri is the package zip", props.get("CodeUri"), "target/lambda/bootstrap/bootstrap.zip")
        expect(f"{name} Environment", props.get("Environment", {}).get("Variables"), env)
        expect(f"{name} role policies include AWSXRayDaemonWriteAccess",
               "AWSXRayDaemonWriteAccess" in props.get("Policies", []), True)
        layers = [resolve_sub(layer, parameters, "us-east-1") for layer in props.get("Layers", [])]
        if name == "HelloFunction":
            expect(f"{name} has no layers", layers, [])
            function_name = resolve_sub(props.get("FunctionName"), parameters, "us-east-1")
            if isinstance(function_name, dict) and "Ref" in function_name:
                function_name = parameters[function_name["Ref"]]["Default"]
            if make_name is not None:
                expect(f"{name} default name = make's FUNCTION_NAME", function_name, make_name)
        else:
            expected_arn = make_arn or (
                "arn:aws:lambda:us-east-1:901920570463:layer:aws-otel-collector-amd64-ver-0-117-0:1"
            )
            expect(f"{name} Layers (us-east-1, defaults) = make's ADOT_LAYER_ARN", layers, [expected_arn])
            expect(f"{name} is conditional on DeployAdot", functions[name].get("Condition"), "WithAdot")

    cargo_toml = os.path.join(ROOT, "Cargo.toml")
    if tomllib and os.path.isfile(cargo_toml):
        with open(cargo_toml, "rb") as handle:
            deploy = tomllib.load(handle).get("package", {}).get("metadata", {}).get("lambda", {}).get("deploy", {})
        props = effective(globals_, {})
        expect("Cargo.toml deploy.memory", deploy.get("memory"), props.get("MemorySize"))
        expect("Cargo.toml deploy.timeout", deploy.get("timeout"), props.get("Timeout"))
        expect("Cargo.toml deploy.tracing", str(deploy.get("tracing", "")).lower(), props.get("Tracing", "").lower())
        expect("Cargo.toml deploy.env", deploy.get("env"), base_env)

    lint = shutil.which("cfn-lint") or (
        os.path.join(ROOT, ".venv/bin/cfn-lint") if os.path.exists(os.path.join(ROOT, ".venv/bin/cfn-lint")) else None
    )
    if lint:
        result = subprocess.run([lint, path], capture_output=True, text=True, check=False)
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
