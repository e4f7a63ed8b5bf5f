# One entry point for building, testing and running the pipeline.
# `make demo` runs it locally; `make test` is what CI runs.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
NPM ?= npm
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.6.1
ACTIONLINT := $(GO) run github.com/rhysd/actionlint/cmd/actionlint@v1.7.7

# jsii (the bridge the Go CDK uses) prints a large banner on Node versions it
# no longer tests; the message is noise for our use, so it is silenced for
# whichever major version is installed.
NODE_MAJOR := $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := $(NODE_MAJOR)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := $(NODE_MAJOR)
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := $(NODE_MAJOR)

# Extra CDK context for synth and deploy, as key=value words:
#   make synth CONTEXT="consumer=efo dataLake=false"
CONTEXT ?=
CDK_CONTEXT := $(foreach kv,$(CONTEXT),-c $(kv))

.PHONY: help deps lambdas test unit bench lint synth demo deploy clean

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

node_modules/.package-lock.json: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

deps: node_modules/.package-lock.json ## Install Go modules and the pinned npm tools.
	$(GO) mod download

lambdas: ## Build every Lambda as build/lambdas/<name>/bootstrap (linux/arm64).
	$(GO) run ./cmd/buildlambdas -out build/lambdas

test: deps lint ## Run every test: unit, emulator integration, stacks, end to end.
	$(GO) test -count=1 ./...

unit: ## Run the fast tests only (no emulators, no synthesis).
	$(GO) test -short ./...

bench: deps ## Run the benchmarks and print their figures.
	$(GO) test -run '^$$' -bench . -benchmem ./...

lint: ## gofmt, go vet, staticcheck and actionlint.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(ACTIONLINT)

demo: deps ## Run the whole pipeline locally on the sample data (MariaDB, kinesalite, dynalite).
	$(GO) run ./cmd/etl local

synth: deps ## Synthesize the three stacks into cdk.out/ (no AWS account needed); CONTEXT="key=value ..." overrides.
	npx cdk synth --quiet $(CDK_CONTEXT)

deploy: deps ## Deploy the three stacks to the account in your AWS credentials.
	npx cdk deploy $(CDK_CONTEXT) UnifiedStreamETLCommonStack UnifiedStreamETLDataStack UnifiedStreamETLProcessStack

clean: ## Remove build output.
	rm -rf build cdk.out
