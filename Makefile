# tagpipe — see README.md. Every target works from a plain clone with Go installed.
GO        ?= go
BIN       := bin/tagpipe
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# --exclude-libs,ALL keeps the C++ symbols of the static DuckDB library out of the dynamic
# symbol table: 6 MB less for the loader to read at start (and resident afterwards).
LDFLAGS   := -X main.version=$(VERSION) -extldflags=-Wl,--exclude-libs,ALL
STATICCHECK_VERSION := v0.8.2
# Packages without cgo/DuckDB test in seconds; the rest link DuckDB (slow link, ~1 min).
PKGS      := ./...
TEST_TIMEOUT ?= 20m

.PHONY: all build demo test test-race interop e2e bench lint fuzz clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/tagpipe

demo: build
	./scripts/demo.sh

test:
	$(GO) test -timeout $(TEST_TIMEOUT) $(PKGS)

test-race:
	$(GO) test -race -timeout 40m $(PKGS)

# Interop with non-Go Kafka clients (kcat, kafka-python, confluent-kafka-python, kafkajs)
# and browsers; needs the Debian packages that .ci/run installs (and npm for kafkajs).
interop: build
	./scripts/interop.sh

e2e: build
	./scripts/e2e.sh

bench:
	./scripts/bench.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

fuzz:
	./scripts/fuzz.sh

clean:
	rm -rf bin
