# Packaging and deployment: `make package`, then `make create` / `update` / `invoke` / `get` /
# `list` / `delete` with the AWS CLI (the original's commands). Four deployment variants, the four
# ways X-Ray takes the function's spans (docs/deploy.md compares them), picked with VARIANT=:
#
#   otlp-udp   (default) OTLP over UDP to the X-Ray daemon Lambda runs with active tracing;
#              no extension, no collector: OTEL_TRACES_EXPORTER=otlp and no OTLP endpoint
#   segments   X-Ray segment documents over UDP to the same daemon: OTEL_TRACES_EXPORTER=xray;
#              needs a zip built with them (`make package FEATURES=xray-segments`: segment
#              documents are opt-in, the default build is OTLP only and starts ~10% faster)
#   adot       OTLP to the ADOT collector layer, which signs and forwards it to X-Ray's OTLP
#              endpoint (collector.yaml; COLLECTOR_CONFIG=collector-awsxray.yaml for segments)
#   xray-otlp  OTLP straight to X-Ray's OTLP endpoint, signed by the function (SigV4)
#
# Each non-default variant has its own function name, so all four can run side by side, and its
# own targets: `make create-adot` = `make create VARIANT=adot` (likewise -segments, -xray-otlp).
# Included from the root Makefile; `make help` lists it all.
#
# Everything is a variable you can override on the command line or in the environment:
#   FUNCTION_NAME  rust-hello-world (otlp-udp); the others get -segments, -adot, -xray-otlp
#   REGION         $AWS_REGION / $AWS_DEFAULT_REGION / us-east-1
#   ENDPOINT       $AWS_ENDPOINT_URL (e.g. a moto_server URL; passed as --endpoint-url)
#   ARCH           x86_64 (arm64 needs the aarch64 Rust target; see README.md, "Deploying to AWS Lambda")
#   ADOT_ACCOUNT / ADOT_VERSION / ADOT_LAYER_VERSION / ADOT_LAYER_ARN   the collector layer
#   COLLECTOR_CONFIG   collector.yaml (adot: which collector configuration from the zip)
#   LOG_LEVEL      INFO (the function's ApplicationLogLevel; logs are JSON)
#   ZIP            the deployment package   SKIP_TESTS=1   `make package` without `make test`
#   FEATURES       cargo features added to the package build (xray-segments for the segments variant)
#   AWS            the AWS CLI executable   AWS_ROLE_ARN   the execution role (create only)

FUNCTION_NAME ?= rust-hello-world
ADOT_FUNCTION_NAME ?= $(FUNCTION_NAME)-adot
SEGMENTS_FUNCTION_NAME ?= $(FUNCTION_NAME)-segments
XRAY_OTLP_FUNCTION_NAME ?= $(FUNCTION_NAME)-xray-otlp
VARIANTS := otlp-udp segments adot xray-otlp
VARIANT ?= otlp-udp
# ARCH only from the command line (`make package ARCH=arm64`): some environments export ARCH=amd64.
ifneq ($(origin ARCH),command line)
ARCH := x86_64
endif
REGION ?= $(or $(AWS_REGION),$(AWS_DEFAULT_REGION),us-east-1)
ENDPOINT ?= $(AWS_ENDPOINT_URL)
AWS ?= aws
EVENT ?= events/success.json
ERROR_EVENT ?= events/throw-error.json
LAMBDA_DIR ?= $(or $(CARGO_TARGET_DIR),target)/lambda
ZIP ?= $(LAMBDA_DIR)/bootstrap/bootstrap.zip
FEATURES ?=
RUNTIME := provided.al2023
FUNCTION_TIMEOUT ?= 30
FUNCTION_MEMORY ?= 256

# The ADOT collector layer, published by AWS in account 901920570463 in every region, one per
# architecture (amd64 / arm64): https://aws-otel.github.io/docs/getting-started/lambda
ADOT_ACCOUNT ?= 901920570463
ADOT_VERSION ?= 0-117-0
ADOT_LAYER_VERSION ?= 1
ADOT_ARCH = $(if $(filter arm64,$(ARCH)),arm64,amd64)
ADOT_LAYER_ARN ?= arn:aws:lambda:$(REGION):$(ADOT_ACCOUNT):layer:aws-otel-collector-$(ADOT_ARCH)-ver-$(ADOT_VERSION):$(ADOT_LAYER_VERSION)

# The collector configurations the zip carries (the adot variant picks one with COLLECTOR_CONFIG).
COLLECTOR_FILES := collector.yaml collector-awsxray.yaml
COLLECTOR_CONFIG ?= collector.yaml
LOG_LEVEL ?= INFO
# Lambda's own platform log lines (START, END, REPORT) at WARN: only the problems.
SYSTEM_LOG_LEVEL ?= WARN
LOGGING_CONFIG = LogFormat=JSON,ApplicationLogLevel=$(LOG_LEVEL),SystemLogLevel=$(SYSTEM_LOG_LEVEL)

# Where each variant's spans go. X-Ray's OTLP endpoint (HTTP only) needs CloudWatch Transaction
# Search and xray:PutSpans (deploy/xray-otlp-policy.json); the ADOT collector listens on
# localhost:4318 (collector.yaml).
XRAY_OTLP_TRACES_ENDPOINT = https://xray.$(REGION).amazonaws.com/v1/traces
ADOT_OTLP_TRACES_ENDPOINT = http://localhost:4318/v1/traces

# Per-variant settings, picked by name (make functions split on commas, so no $(if) around JSON).
# Each variant sets exactly the variables its path needs; PACKAGE_MANAGEMENT_SYSTEM is the
# function's own (the original's). Every variant has active tracing: Lambda then makes the
# sampling decision (Sampled=1 in the trace header; the function exports nothing for Sampled=0)
# and records its own segments, and, for otlp-udp and segments, runs the daemon.
FUNCTION_otlp-udp = $(FUNCTION_NAME)
FUNCTION_segments = $(SEGMENTS_FUNCTION_NAME)
FUNCTION_adot = $(ADOT_FUNCTION_NAME)
FUNCTION_xray-otlp = $(XRAY_OTLP_FUNCTION_NAME)
# The variables, KEY=VALUE (no spaces, no commas): one list per variant, written out as the
# AWS CLI's --environment JSON and as `cargo lambda deploy`'s --env-var arguments.
ENV_otlp-udp = PACKAGE_MANAGEMENT_SYSTEM=cargo OTEL_TRACES_EXPORTER=otlp
ENV_segments = PACKAGE_MANAGEMENT_SYSTEM=cargo OTEL_TRACES_EXPORTER=xray
ENV_adot = PACKAGE_MANAGEMENT_SYSTEM=cargo OPENTELEMETRY_COLLECTOR_CONFIG_URI=/var/task/$(COLLECTOR_CONFIG) \
  OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=$(ADOT_OTLP_TRACES_ENDPOINT)
ENV_xray-otlp = PACKAGE_MANAGEMENT_SYSTEM=cargo OTEL_TRACES_EXPORTER=otlp \
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=$(XRAY_OTLP_TRACES_ENDPOINT)
comma := ,
empty :=
space := $(empty) $(empty)
env_key = $(firstword $(subst =, ,$(1)))
env_json_pair = "$(call env_key,$(1))":"$(patsubst $(call env_key,$(1))=%,%,$(1))"
ENV_JSON = {"Variables":{$(subst $(space),$(comma),$(strip $(foreach kv,$(ENV_$(VARIANT)),$(call env_json_pair,$(kv)))))}}
ENV_ARGS = $(addprefix --env-var ,$(ENV_$(VARIANT)))
LAYERS_CREATE_adot = --layers $(ADOT_LAYER_ARN)
LAYERS_UPDATE_adot = --layers $(ADOT_LAYER_ARN)
LAYERS_UPDATE = $(or $(LAYERS_UPDATE_$(VARIANT)),--layers '[]')
FUNCTION = $(FUNCTION_$(VARIANT))

AWS_ARGS = --region $(REGION) $(if $(ENDPOINT),--endpoint-url $(ENDPOINT))
LAMBDA = $(AWS) lambda $(AWS_ARGS)
# AWS CLI v2 would page `get` and `list` output through less.
export AWS_PAGER :=

# --- package ---------------------------------------------------------------------------------

.PHONY: package
package: $(if $(SKIP_TESTS),,test) ## Run the tests (SKIP_TESTS=1 skips them), build the release bootstrap for provided.al2023 and zip it
	@ARCH=$(ARCH) ZIP=$(ZIP) FEATURES="$(FEATURES)" COLLECTOR_FILES="$(COLLECTOR_FILES)" bash deploy/package.sh

.PHONY: sam-build
sam-build: ## `sam build` of template.yaml (rust-cargolambda); after `make package` it reuses that release build (checked)
	@bash deploy/sam-build.sh

.PHONY: check-glibc
check-glibc: ## Fail if the packaged bootstrap needs a GLIBC_ symbol version newer than 2.34 (Amazon Linux 2023)
	@ZIP=$(ZIP) bash deploy/check-glibc.sh

.PHONY: smoke-test
smoke-test: ## Run the packaged zip's bootstrap against a stand-in Lambda Runtime API: one success, one error
	@python3 deploy/smoke_test.py $(ZIP) $(EVENT) $(ERROR_EVENT)

# --- deploy with the AWS CLI -----------------------------------------------------------------

.PHONY: .aws-cli .role .zip .variant
.aws-cli:
	@command -v $(AWS) >/dev/null 2>&1 || { \
	  echo "The AWS CLI ('$(AWS)') is not installed or not on PATH. Install it" >&2; \
	  echo "(https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html), or run" >&2; \
	  echo "'make tools' and pass AWS=.venv/bin/aws, then configure credentials ('aws configure')." >&2; \
	  exit 1; }
.role:
	@[ -n "$(AWS_ROLE_ARN)" ] || { \
	  echo "AWS_ROLE_ARN is not set. Export the ARN of the function's execution role, e.g." >&2; \
	  echo "  export AWS_ROLE_ARN=arn:aws:iam::123456789012:role/rust-hello-world" >&2; \
	  echo "(a role Lambda can assume, with the AWSLambdaBasicExecutionRole and" >&2; \
	  echo "AWSXRayDaemonWriteAccess managed policies, plus deploy/xray-otlp-policy.json for the adot and" >&2; \
	  echo "xray-otlp variants; see docs/deploy.md)." >&2; \
	  exit 1; }
.variant:
	@case " $(VARIANTS) " in *" $(VARIANT) "*) ;; *) echo "VARIANT must be one of: $(VARIANTS); not '$(VARIANT)'" >&2; exit 1;; esac
.zip: .variant
	@[ -f "$(ZIP)" ] || { echo "No deployment package at $(ZIP): run 'make package' first." >&2; exit 1; }
	@if [ "$(VARIANT)" = adot ]; then \
	  python3 -c 'import sys, zipfile; sys.exit(sys.argv[2] not in zipfile.ZipFile(sys.argv[1]).namelist())' "$(ZIP)" "$(COLLECTOR_CONFIG)" || { \
	    echo "$(ZIP) has no $(COLLECTOR_CONFIG), which the ADOT variant needs" >&2; \
	    echo "(OPENTELEMETRY_COLLECTOR_CONFIG_URI=/var/task/$(COLLECTOR_CONFIG)): add $(COLLECTOR_CONFIG) at the" >&2; \
	    echo "repository root and run 'make package' again." >&2; \
	    exit 1; }; \
	fi

.PHONY: create
create: .aws-cli .role .zip ## Create the function: provided.al2023, bootstrap, 30 s, 256 MB, active tracing, JSON logs (VARIANT=...)
	$(LAMBDA) create-function --function-name $(FUNCTION) \
	  --runtime $(RUNTIME) --handler bootstrap --architectures $(ARCH) \
	  --role $(AWS_ROLE_ARN) --zip-file fileb://$(ZIP) \
	  --timeout $(FUNCTION_TIMEOUT) --memory-size $(FUNCTION_MEMORY) --tracing-config Mode=Active \
	  --logging-config $(LOGGING_CONFIG) --environment '$(ENV_JSON)' $(LAYERS_CREATE_$(VARIANT)) \
	  --query '{FunctionName:FunctionName,FunctionArn:FunctionArn,State:State,CodeSha256:CodeSha256,CodeSize:CodeSize}' --output json
	$(LAMBDA) wait function-active --function-name $(FUNCTION)

.PHONY: update
update: .aws-cli .zip ## Upload the zip to the existing function, then re-apply its configuration (VARIANT=...)
	$(LAMBDA) update-function-code --function-name $(FUNCTION) --zip-file fileb://$(ZIP) --architectures $(ARCH) \
	  --query '{FunctionName:FunctionName,CodeSha256:CodeSha256,CodeSize:CodeSize,LastModified:LastModified}' --output json
	$(LAMBDA) wait function-updated --function-name $(FUNCTION)
	$(LAMBDA) update-function-configuration --function-name $(FUNCTION) \
	  --runtime $(RUNTIME) --handler bootstrap --timeout $(FUNCTION_TIMEOUT) --memory-size $(FUNCTION_MEMORY) \
	  --tracing-config Mode=Active --logging-config $(LOGGING_CONFIG) --environment '$(ENV_JSON)' $(LAYERS_UPDATE) \
	  --query '{FunctionName:FunctionName,LastUpdateStatus:LastUpdateStatus,Layers:Layers[].Arn}' --output json
	$(LAMBDA) wait function-updated --function-name $(FUNCTION)

.PHONY: invoke
invoke: .aws-cli .variant ## Invoke the deployed function with events/success.json (EVENT=...); print the response and the log tail
	@AWS="$(AWS)" AWS_ARGS="$(AWS_ARGS)" bash deploy/invoke.sh $(FUNCTION) $(EVENT) success

.PHONY: invoke-error
invoke-error: .aws-cli .variant ## Invoke it with events/throw-error.json; succeeds when the function reports the expected error
	@AWS="$(AWS)" AWS_ARGS="$(AWS_ARGS)" bash deploy/invoke.sh $(FUNCTION) $(ERROR_EVENT) error

.PHONY: get
get: .aws-cli .variant ## Show the function's configuration and code location (get-function)
	$(LAMBDA) get-function --function-name $(FUNCTION) --output json

.PHONY: list
list: .aws-cli ## List the functions in the region: name, runtime, architecture, last modified
	$(LAMBDA) list-functions --output json \
	  --query 'Functions[].{FunctionName:FunctionName,Runtime:Runtime,Architectures:Architectures,LastModified:LastModified}'

.PHONY: delete
delete: .aws-cli .variant ## Delete the function (VARIANT=...)
	$(LAMBDA) delete-function --function-name $(FUNCTION)

.PHONY: traces
traces: .aws-cli ## Trace summaries X-Ray recorded in the last 10 minutes (ids, durations, errors)
	@# End one second ahead: `date +%s` truncates, and a trace that ended within this second
	@# (its end_time has a fraction) would fall after an end of `now` and not be listed.
	@now=$$(date +%s); $(AWS) xray $(AWS_ARGS) get-trace-summaries --start-time $$((now - 600)) --end-time $$((now + 1)) \
	  --query 'TraceSummaries[].{Id:Id,Duration:Duration,HasError:HasError,HasFault:HasFault}' --output json

# Each non-default variant under its own target names: create-adot = create VARIANT=adot, etc.
VARIANT_ACTIONS := create update invoke invoke-error get delete
define variant_targets
.PHONY: $(addsuffix -$(1),$(VARIANT_ACTIONS))
$(addsuffix -$(1),$(VARIANT_ACTIONS)):
	@$$(MAKE) --no-print-directory $$(patsubst %-$(1),%,$$@) VARIANT=$(1)
endef
$(foreach v,segments adot xray-otlp,$(eval $(call variant_targets,$(v))))
.PHONY: variants
variants: ## List the per-variant targets (create-adot = create VARIANT=adot, ...)
	@for v in segments adot xray-otlp; do echo "  $(addsuffix -$$v,$(VARIANT_ACTIONS))"; done

# cargo-lambda's own deploy command: reads memory, timeout, tracing and env from
# [package.metadata.lambda.deploy] in Cargo.toml and zips the bootstrap built by `make package`.
# It writes its own bootstrap.zip next to the binary, so it gets a copy in a directory of its
# own: `make package`'s zip stays as it was.
CARGO_DEPLOY_DIR = $(LAMBDA_DIR)/cargo-deploy
.PHONY: cargo-deploy
cargo-deploy: .role .variant ## Alternative to create/update: `cargo lambda deploy` (settings from Cargo.toml)
	@[ -f $(LAMBDA_DIR)/bootstrap/bootstrap ] || { echo "No $(LAMBDA_DIR)/bootstrap/bootstrap: run 'make package' first." >&2; exit 1; }
	@mkdir -p $(CARGO_DEPLOY_DIR)/bootstrap && cp $(LAMBDA_DIR)/bootstrap/bootstrap $(CARGO_DEPLOY_DIR)/bootstrap/bootstrap
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda deploy --binary-name bootstrap --lambda-dir $(CARGO_DEPLOY_DIR) \
	  --region $(REGION) $(if $(ENDPOINT),--endpoint-url $(ENDPOINT)) --role $(AWS_ROLE_ARN) \
	  $(foreach f,$(wildcard $(COLLECTOR_FILES)),--include $(f)) \
	  $(if $(filter adot,$(VARIANT)),--layer $(ADOT_LAYER_ARN)) $(ENV_ARGS) \
	  $(FUNCTION)

# --- tests against moto (an AWS API emulator) --------------------------------------------------

.PHONY: deploy-test
deploy-test: ## Exercise every deploy target against moto_server on 127.0.0.1 (no AWS account needed), and the SAM template
	@bash deploy/deploy-test.sh
