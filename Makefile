# Makefile for switchboard — run `make help` for the list of targets.

GO        ?= go
BIN_DIR   ?= bin
BINARY    ?= $(BIN_DIR)/switchboard
MAIN_PKG  ?= ./cmd/switchboard

# Core packages: tested with the race detector.
RACE_PKGS ?= ./acd/... ./session/... ./agents/... ./channels/... ./internal/... ./kb/... ./migrations/...
# Browser (chromedp) and multi-process tests: no race detector, to keep the
# suite fast.
SLOW_PKGS ?= ./console/... ./cmd/...

TEST_FLAGS   ?= -count=1
RACE_TIMEOUT ?= 15m
SLOW_TIMEOUT ?= 15m
BENCH        ?= .
BENCH_FLAGS  ?= -benchmem
BENCH_ARGS   ?=

# Go files to check with gofmt (skips VCS data, build output, npm deps).
GO_FILES_CMD = find . \( -path ./.git -o -path ./bin -o -path ./data -o -name node_modules -o -name testdata \) -prune -o -type f -name '*.go' -print0

# go test must print its normal (non -v) output so the closing ok/FAIL lines
# stay visible; drop any -v smuggled in through GOFLAGS.
override GOFLAGS := $(filter-out -v -v=true,$(GOFLAGS))
export GOFLAGS

.DEFAULT_GOAL := help
SHELL := /bin/bash

.PHONY: help run build test test-short test-race test-slow fmt-check vet lint fmt bench bench-load clean docker

help: ## Show this help
	@echo 'Usage: make <target>'
	@echo
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN { FS = ":.*?## " } { printf "  %-12s %s\n", $$1, $$2 }'

run: ## Run the server (go run ./cmd/switchboard; pass ARGS=...)
	$(GO) run $(MAIN_PKG) $(ARGS)

build: ## Build a static binary into bin/switchboard
	@mkdir -p $(BIN_DIR)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BINARY) $(MAIN_PKG)

test: fmt-check vet build ## gofmt check, go vet, build, then the full test suite
	$(GO) test -race $(TEST_FLAGS) -timeout $(RACE_TIMEOUT) $(RACE_PKGS)
	$(GO) test $(TEST_FLAGS) -timeout $(SLOW_TIMEOUT) $(SLOW_PKGS)

test-race: ## Core packages only, with the race detector
	$(GO) test -race $(TEST_FLAGS) -timeout $(RACE_TIMEOUT) $(RACE_PKGS)

test-slow: ## Browser and multi-process tests only (./console/... ./cmd/...)
	$(GO) test $(TEST_FLAGS) -timeout $(SLOW_TIMEOUT) $(SLOW_PKGS)

test-short: ## Quick run: go test -short ./... (no race detector)
	$(GO) test -short $(TEST_FLAGS) ./...

fmt-check: ## Fail listing the files gofmt would change
	@files="$$($(GO_FILES_CMD) | xargs -0 -r gofmt -l)"; \
	if [ -n "$$files" ]; then \
		echo "gofmt: these files need formatting (run 'make fmt'):"; \
		echo "$$files"; \
		exit 1; \
	fi

vet: ## go vet ./...
	$(GO) vet ./...

lint: fmt-check vet ## gofmt -l, go vet, and staticcheck if installed
	@if command -v staticcheck >/dev/null 2>&1; then \
		echo "staticcheck ./..."; staticcheck ./...; \
	else \
		echo "staticcheck not installed; skipping (go install honnef.co/go/tools/cmd/staticcheck@latest)"; \
	fi

fmt: ## Format all Go files in place (gofmt -w)
	@$(GO_FILES_CMD) | xargs -0 -r gofmt -w

bench: ## Go micro-benchmarks (for load tests against a server see `switchboard bench` / make bench-load)
	$(GO) test -run '^$$' -bench $(BENCH) $(BENCH_FLAGS) ./...

bench-load: build ## Build, then run the load generator: bin/switchboard bench (defaults; BENCH_ARGS=...)
	$(BINARY) bench $(BENCH_ARGS)

clean: ## Remove build output
	rm -rf $(BIN_DIR) coverage.out coverage.html

docker: ## Build the container image (switchboard:dev)
	docker build -t switchboard:dev .
