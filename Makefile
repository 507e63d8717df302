# ipvsman — `make help` lists the targets.
GO       ?= go
BIN      := bin
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.Version=$(VERSION)
FUZZTIME ?= 10s
UNIT     := ./fsm/... ./cluster/... ./director/... ./vip/... ./cmd/...

.DEFAULT_GOAL := help
.PHONY: help build test test-unit test-host fuzz lint demo clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/ipvsmand and bin/ipvsman (static, CGO_ENABLED=0)
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ipvsmand ./cmd/ipvsmand
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ipvsman ./cmd/ipvsman

test: lint test-unit test-host fuzz ## all tests, as CI runs them
	@echo "make test: all tiers passed"

test-unit: ## tier 1: pure code (fsm, parsers, cluster), race detector on; fast, no root
	$(GO) test -race -count=1 $(UNIT)

test-host: ## tier 2: real ipvsmand processes and the CLI on loopback (--ipvs=off)
	$(GO) test -race -count=1 -timeout 15m ./test/host/...

fuzz: ## run every fuzz target for FUZZTIME each (default 10s)
	@FUZZTIME=$(FUZZTIME) GO=$(GO) sh test/fuzz.sh

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...

demo: build ## start a three-node cluster on loopback and show it working (milestone 1 demo)
	@bash test/demo/loopback.sh

clean: ## remove build output
	rm -rf $(BIN)
