# banjia: `make test` installs what the tests need (Dovecot from Debian's
# packages, when it can) and runs every test against real servers.
GO ?= go
PKGS := ./...

.PHONY: all build test deps lint vet fmt-check demo bench fuzz e2e clean

all: build

build:
	$(GO) build -o bin/banjia ./cmd/banjia

deps:
	@bash scripts/install-deps.sh || echo "WARNING: Dovecot could not be installed: server-backed tests will be SKIPPED (set BANJIA_REQUIRE_SERVERS=1 to make that an error)"

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

lint: fmt-check vet

# The whole suite with the race detector, then a short fuzz run of each parser.
test: deps lint
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(MAKE) fuzz FUZZTIME=10s

FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseRanges$$' -fuzztime $(FUZZTIME) ./state/
	$(GO) test -run '^$$' -fuzz '^FuzzReadAccounts$$' -fuzztime $(FUZZTIME) ./migrate/
	$(GO) test -run '^$$' -fuzz '^FuzzMapFolders$$' -fuzztime $(FUZZTIME) ./sinks/
	$(GO) test -run '^$$' -fuzz '^FuzzParseEndpoint$$' -fuzztime $(FUZZTIME) ./sources/

demo:
	$(GO) run ./cmd/banjia demo

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./migrate/ ./state/

clean:
	rm -rf bin
