# Packaging and deployment: `make package`, then `make create` / `update` / `invoke` / `get` /
# `list` / `delete` with the AWS CLI (the original's commands). `VARIANT=adot` (or the *-adot
# targets) deploys the second variant: spans exported over OTLP to the ADOT collector Lambda
# layer instead of straight to X-Ray. Included from the root Makefile; `make help` lists it all.
#
# Everything is a variable you can override on the command line or in the environment:
#   FUNCTION_NAME  rust-hello-world          ADOT_FUNCTION_NAME  $(FUNCTION_NAME)-adot
#   REGION         $AWS_REGION / $AWS_DEFAULT_REGION / us-east-1
#   ENDPOINT       $AWS_ENDPOINT_URL (e.g. a moto_server URL; passed as --endpoint-url)
#   ARCH           x86_64 (arm64 needs the aarch64 Rust target; see README.md, "Deploying to AWS Lambda")
#   ADOT_ACCOUNT / ADOT_VERSION / ADOT_LAYER_VERSION / ADOT_LAYER_ARN   the collector layer
#   ZIP            the deployment package   SKIP_TESTS=1   `make package` without `make test`
#   AWS            the AWS CLI executable   AWS_ROLE_ARN   the execution role (create only)

FUNCTION_NAME ?= rust-hello-world
ADOT_FUNCTION_NAME ?= $(FUNCTION_NAME)-adot
VARIANT ?= xray
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

# Per-variant settings, picked by name (make functions split on commas, so no $(if) around JSON).
FUNCTION_xray = $(FUNCTION_NAME)
FUNCTION_adot = $(ADOT_FUNCTION_NAME)
ENV_JSON_xray = {"Variables":{"PACKAGE_MANAGEMENT_SYSTEM":"cargo"}}
ENV_JSON_adot = {"Variables":{"PACKAGE_MANAGEMENT_SYSTEM":"cargo","OPENTELEMETRY_COLLECTOR_CONFIG_URI":"/var/task/collector.yaml","OTEL_TRACES_EXPORTER":"otlp"}}
LAYERS_CREATE_xray =
LAYERS_CREATE_adot = --layers $(ADOT_LAYER_ARN)
LAYERS_UPDATE_xray = --layers '[]'
LAYERS_UPDATE_adot = --layers $(ADOT_LAYER_ARN)
FUNCTION = $(FUNCTION_$(VARIANT))
ENV_JSON = $(ENV_JSON_$(VARIANT))

AWS_ARGS = --region $(REGION) $(if $(ENDPOINT),--endpoint-url $(ENDPOINT))
LAMBDA = $(AWS) lambda $(AWS_ARGS)
# AWS CLI v2 would page `get` and `list` output through less.
export AWS_PAGER :=

# --- package ---------------------------------------------------------------------------------

.PHONY: package
package: $(if $(SKIP_TESTS),,test) ## Run the tests (SKIP_TESTS=1 skips them), build the release bootstrap for provided.al2023 and zip it
	@ARCH=$(ARCH) ZIP=$(ZIP) bash deploy/package.sh

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
	  echo "AWSXRayDaemonWriteAccess managed policies; see README.md, "Deploying to AWS Lambda")." >&2; \
	  exit 1; }
.variant:
	@case "$(VARIANT)" in xray|adot) ;; *) echo "VARIANT must be xray or adot, not '$(VARIANT)'" >&2; exit 1;; esac
.zip: .variant
	@[ -f "$(ZIP)" ] || { echo "No deployment package at $(ZIP): run 'make package' first." >&2; exit 1; }
	@if [ "$(VARIANT)" = adot ]; then \
	  python3 -c 'import sys, zipfile; sys.exit("collector.yaml" not in zipfile.ZipFile(sys.argv[1]).namelist())' "$(ZIP)" || { \
	    echo "$(ZIP) has no collector.yaml, which the ADOT variant needs" >&2; \
	    echo "(OPENTELEMETRY_COLLECTOR_CONFIG_URI=/var/task/collector.yaml): add collector.yaml at the" >&2; \
	    echo "repository root and run 'make package' again." >&2; \
	    exit 1; }; \
	fi

.PHONY: create
create: .aws-cli .role .zip ## Create the function: provided.al2023, bootstrap, 30 s, 256 MB, active tracing (VARIANT=adot: ADOT layer)
	$(LAMBDA) create-function --function-name $(FUNCTION) \
	  --runtime $(RUNTIME) --handler bootstrap --architectures $(ARCH) \
	  --role $(AWS_ROLE_ARN) --zip-file fileb://$(ZIP) \
	  --timeout $(FUNCTION_TIMEOUT) --memory-size $(FUNCTION_MEMORY) --tracing-config Mode=Active \
	  --environment '$(ENV_JSON)' $(LAYERS_CREATE_$(VARIANT)) \
	  --query '{FunctionName:FunctionName,FunctionArn:FunctionArn,State:State,CodeSha256:CodeSha256,CodeSize:CodeSize}' --output json
	$(LAMBDA) wait function-active --function-name $(FUNCTION)

.PHONY: update
update: .aws-cli .zip ## Upload the zip to the existing function, then re-apply its configuration (VARIANT=adot for the ADOT one)
	$(LAMBDA) update-function-code --function-name $(FUNCTION) --zip-file fileb://$(ZIP) --architectures $(ARCH) \
	  --query '{FunctionName:FunctionName,CodeSha256:CodeSha256,CodeSize:CodeSize,LastModified:LastModified}' --output json
	$(LAMBDA) wait function-updated --function-name $(FUNCTION)
	$(LAMBDA) update-function-configuration --function-name $(FUNCTION) \
	  --runtime $(RUNTIME) --handler bootstrap --timeout $(FUNCTION_TIMEOUT) --memory-size $(FUNCTION_MEMORY) \
	  --tracing-config Mode=Active --environment '$(ENV_JSON)' $(LAYERS_UPDATE_$(VARIANT)) \
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
delete: .aws-cli .variant ## Delete the function (VARIANT=adot for the ADOT one)
	$(LAMBDA) delete-function --function-name $(FUNCTION)

.PHONY: traces
traces: .aws-cli ## Trace summaries X-Ray recorded in the last 10 minutes (ids, durations, errors)
	@now=$$(date +%s); $(AWS) xray $(AWS_ARGS) get-trace-summaries --start-time $$((now - 600)) --end-time $$now \
	  --query 'TraceSummaries[].{Id:Id,Duration:Duration,HasError:HasError,HasFault:HasFault}' --output json

# The ADOT variant under its own name, so both can be deployed and compared side by side.
.PHONY: create-adot update-adot invoke-adot get-adot delete-adot
create-adot: ## create, with the ADOT collector layer (OTEL_TRACES_EXPORTER=otlp, collector.yaml from the zip)
	@$(MAKE) --no-print-directory create VARIANT=adot
update-adot: ## update, for the ADOT variant
	@$(MAKE) --no-print-directory update VARIANT=adot
invoke-adot: ## invoke, for the ADOT variant
	@$(MAKE) --no-print-directory invoke VARIANT=adot
get-adot: ## get, for the ADOT variant
	@$(MAKE) --no-print-directory get VARIANT=adot
delete-adot: ## delete, for the ADOT variant
	@$(MAKE) --no-print-directory delete VARIANT=adot

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
	  $(if $(wildcard collector.yaml),--include collector.yaml) \
	  $(if $(filter adot,$(VARIANT)),--layer $(ADOT_LAYER_ARN) --env-var OPENTELEMETRY_COLLECTOR_CONFIG_URI=/var/task/collector.yaml --env-var OTEL_TRACES_EXPORTER=otlp --env-var PACKAGE_MANAGEMENT_SYSTEM=cargo) \
	  $(FUNCTION)

# --- tests against moto (an AWS API emulator) --------------------------------------------------

.PHONY: deploy-test
deploy-test: ## Exercise every deploy target against moto_server on 127.0.0.1 (no AWS account needed), and the SAM template
	@bash deploy/deploy-test.sh
