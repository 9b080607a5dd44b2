# keywatch: the two commands are `make demo` and `make test`.
GO      ?= go
GOFLAGS ?= -buildvcs=false
export GOFLAGS

# Where pinned test binaries (geth, btcd) are cached between runs.
BIN_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/keywatch/bin

# Packages run two at a time: the integration suites start their own geth,
# redis-server and NATS, so they can run side by side.
TEST_PARALLEL ?= 2
TEST_TIMEOUT  ?= 25m

.PHONY: all build demo btcd test deps vet bench contracts clean

all: build

build:
	$(GO) build -o bin/keywatch ./cmd/keywatch

## demo: run the whole system on embedded defaults and play the story. The
## Bitcoin leg runs a real btcd in regtest: built (pinned) on the first run.
## In a terminal it stays up after the story (console, Ctrl-C to stop); when
## its output is not a terminal (CI, a pipe) it exits 0 once the story is over.
demo: btcd
	@if [ -t 1 ]; then $(GO) run ./cmd/keywatch demo -keep; else $(GO) run ./cmd/keywatch demo; fi

## btcd: build the pinned btcd the demo's Bitcoin leg runs, when missing.
btcd:
	scripts/deps.sh btcd

## deps: install what the tests need (redis-server, geth, btcd, chromium) when missing.
deps:
	scripts/deps.sh

vet:
	$(GO) vet ./...

## test: install what is missing, then run every test (each suite starts and
## stops its own geth, redis-server and NATS).
test: deps vet
	$(GO) test -p $(TEST_PARALLEL) -timeout $(TEST_TIMEOUT) -count=1 ./...

## bench: the benchmarks quoted in the README.
bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 2s ./chains/... ./policies/...
	$(GO) test -run '^$$' -bench . -benchtime 10000x ./alerts/webhook/
	$(GO) test -run '^$$' -bench Screen -benchtime 2000x ./screening/
	$(GO) test -run '^$$' -bench ListHeld -benchtime 50x ./holds/

## contracts: rebuild the Solidity test contracts (needs node and npm).
contracts:
	contracts/build.sh

clean:
	rm -rf bin
