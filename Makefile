# banjia: `make test` installs what the tests need (Dovecot, Cyrus, Courier and Chromium
# from Debian's packages, when it can) and runs every test against real
# servers and a real browser.
GO ?= go
PKGS := ./...

.PHONY: all build test deps lint vet fmt-check demo bench fuzz e2e reliability clean

all: build

build:
	$(GO) build -o bin/banjia ./cmd/banjia

deps:
	@bash scripts/install-deps.sh || echo "WARNING: Dovecot, Cyrus, Courier or Chromium could not be installed: server-backed and browser tests will be SKIPPED (set BANJIA_REQUIRE_SERVERS=1 to make that an error)"

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

lint: fmt-check vet

# The engine's tests with the race detector; the CLI's end-to-end tests run
# the real binary in subprocesses, so their harness runs without it (it only
# reads and compares mailboxes, and is several times slower under -race).
# The two run at once: the engine's last minutes are one package's serial
# tests, which leave a core free. The CLI's output is shown when both end.
# Then a short fuzz run of each parser.
# The Kubernetes manifests' test has no concurrency to race on, and -race
# would compile the Kubernetes API and kustomize packages a second time.
ENGINE_PKGS := $(shell $(GO) list ./... | grep -v -e '/cmd/banjia$$' -e '/deploy/')
test: deps lint
	@out=$$(mktemp); \
	( $(GO) test -count=1 -timeout 20m ./cmd/banjia/ ./deploy/... >$$out 2>&1; echo $$? >$$out.rc ) & \
	$(GO) test -race -count=1 -timeout 45m $(ENGINE_PKGS); engine=$$?; \
	wait; cat $$out; cli=$$(cat $$out.rc); rm -f $$out $$out.rc; \
	test $$engine -eq 0 && test $$cli -eq 0
	$(MAKE) fuzz FUZZTIME=200000x FUZZFLAGS=-parallel=1

# In `make test` the fuzzers run a fixed number of inputs: a time limit
# sometimes ends a run with a spurious "context deadline exceeded" on a
# loaded 2-core machine.
FUZZTIME ?= 30s
FUZZFLAGS ?=
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseRanges$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./state/
	$(GO) test -run '^$$' -fuzz '^FuzzReadAccounts$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./migrate/
	$(GO) test -run '^$$' -fuzz '^FuzzMapFolders$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./sinks/
	$(GO) test -run '^$$' -fuzz '^FuzzParseEndpoint$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./mail/

demo:
	$(GO) run ./cmd/banjia demo

# The reliability suite (faults, crash loop, bad inputs, secrets); writes
# docs/reliability.md. `make test` runs the same tests without the report.
reliability: deps
	bash scripts/reliability.sh

# The benchmark (cmd/banjia-bench): Dovecot source and target on loopback,
# the target's raw ingest limit against banjia end to end (loopback and
# 20 ms RTT), a no-op re-run of a 100,000-message job, peak RSS with a 50 MB
# message among 16 accounts. Prints a markdown table and writes
# docs/performance.md. Each comparison is a warm-up pair and 5 pairs in
# random order, judged on the median pair ratio. About 12 minutes;
# BENCHFLAGS=-quick for about four.
BENCHFLAGS ?=
bench: deps build
	$(GO) run ./cmd/banjia-bench -banjia bin/banjia -reproduce "make bench$(if $(BENCHFLAGS), BENCHFLAGS='$(BENCHFLAGS)')" $(BENCHFLAGS)


clean:
	rm -rf bin
