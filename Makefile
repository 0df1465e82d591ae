# NovaCron build, run and test entry points. See README.md.

GO        ?= go
BIN       := bin/novacron
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/novacron/novacron/internal/buildinfo.Version=$(VERSION)
RUN_ARGS  ?=
# Packages under test; override to narrow a run: make test PKGS=./api/...
PKGS      ?= ./...
TEST_FLAGS ?= -race -timeout 40m

export CGO_ENABLED ?= 0

.PHONY: all build run test test-deps unit bench lint fmt clean

all: build

## build: the static novacron binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/novacron

## run: every role in one process on embedded defaults (simulated fleet,
## in-process bus, embedded Prometheus-compatible store)
run: build
	./$(BIN) run $(RUN_ARGS)

## test-deps: install what the tests need (Debian packages, the Kafka broker)
test-deps:
	./scripts/test-deps.sh

## test: install test dependencies and run every test against real servers
test: test-deps
	CGO_ENABLED=1 NOVACRON_TEST_REQUIRE_SERVERS=1 $(GO) test $(TEST_FLAGS) $(PKGS)

## unit: tests that need no server (servers are skipped, not failed)
unit:
	$(GO) test -short $(PKGS)

## bench: Go micro-benchmarks (see benchmarks/ for the results harness)
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

clean:
	rm -rf bin
