# lhttpd — two commands on a fresh Debian machine: `make run` and `make test`.
SHELL := /bin/bash
CONFIG ?= config/lhttpd.yaml
SWIFT ?= swift
# Debian packages the build, run and tests need (installed only when missing).
APT_PACKAGES ?= ca-certificates pkg-config libcurl4-openssl-dev php-cli default-jdk-headless nats-server
# What only the tests need on top: a real browser for the demo and the JS SDK, Node for the parser cases.
TEST_APT_PACKAGES ?= chromium chromium-driver nodejs python3-pip openssl
# Release builds drop the run-time exclusivity checks in every module, the dependencies' too (swift-nio's
# pipeline and ByteBuffer): `swift_beginAccess` and its bookkeeping were 3-4% of the publish and fan-out
# profiles (issue 14). Package.swift does the same for our hot-path modules in any release build.
RELEASE_FLAGS ?= -Xswiftc -enforce-exclusivity=unchecked

.PHONY: all build release run test deps test-deps check-config clean bench bench-quick asan tsan fuzz fuzz-build
# Seconds `make fuzz` runs the LHTTP parser fuzzer (`make test` runs it for 30).
FUZZ_SECONDS ?= 300

all: build

## deps: install any missing system package (apt-get, only when something is missing)
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@command -v $(SWIFT) >/dev/null || { echo "swift toolchain not found (need Swift 6.2+)"; exit 1; }

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release $(RELEASE_FLAGS) --product lhttpd
	$(SWIFT) build -c release $(RELEASE_FLAGS) --product lhttp

## run: build in release and start lhttpd on the sample config (Ctrl-C stops it)
run: release
	.build/release/lhttpd --config $(CONFIG)

check-config: release
	.build/release/lhttpd --check-config --config $(CONFIG)

## test-deps: the browser, chromedriver, Node and Python's selenium (from PyPI), when missing
test-deps:
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(APT_PACKAGES) $(TEST_APT_PACKAGES)"
	@python3 -c "import selenium" 2>/dev/null || python3 -m pip install -q selenium || python3 -m pip install -q --break-system-packages selenium

## test: the whole suite (unit tests and end-to-end tests over real sockets, a real browser), then fuzzing
## In three runs: the suites that drive other processes (a browser, PHP and Java backends, lhttp-bench, the lhttpd
## executable) would otherwise take both cores from the in-process tests' event loops for seconds, and the proxy's
## bulk transfers (a 1 GiB download, uploads, a paused reader) from those processes' timing in turn.
HEAVY_SUITES ?= ClientsTests|ExampleBackendTests|BenchToolTests|ExecutableTests
BULK_SUITES ?= ProxyTests|ProxyPHPTests|ProxyExecutableTests
test: test-deps
	ulimit -n 20000 2>/dev/null || ulimit -n 4096 2>/dev/null || true; \
	$(SWIFT) build --build-tests && \
	$(SWIFT) test --skip-build --disable-xctest --skip '$(HEAVY_SUITES)|$(BULK_SUITES)' && \
	$(SWIFT) test --skip-build --disable-xctest --filter '$(HEAVY_SUITES)' --skip '$(BULK_SUITES)' && \
	$(SWIFT) test --skip-build --disable-xctest --filter '$(BULK_SUITES)'
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=30

## fuzz: libFuzzer + AddressSanitizer on the wire format (parser, multipart, channel lists, round trip),
## seeded with Tests/FuzzCorpus; fails on any crash (the input is kept in .build-fuzz/crash-*)
fuzz-build: deps
	$(SWIFT) build -c release --product lhttp-fuzz --sanitize=fuzzer --sanitize=address --scratch-path .build-fuzz

fuzz: fuzz-build
	mkdir -p .build-fuzz/corpus
	.build-fuzz/release/lhttp-fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=.build-fuzz/ \
	  -max_len=4096 .build-fuzz/corpus Tests/FuzzCorpus 2>&1 | grep -E "^(#[0-9]+ +(INITED|DONE)|Done|stat::number_of_executed_units|==[0-9]+==|SUMMARY|.*deadly)" ; \
	  test $${PIPESTATUS[0]} -eq 0

## tsan: the whole suite under ThreadSanitizer (races are failures)
tsan: deps
	# Every race is reported (not just the first); any report makes the run exit non-zero.
	TSAN_OPTIONS=halt_on_error=0:exitcode=66 $(SWIFT) test --scratch-path .build-tsan --sanitize=thread --disable-xctest

## asan: the upstream/webhook (libcurl), NATS, cluster and server suites under AddressSanitizer + LeakSanitizer
asan: deps
	# Known leaks outside our code: libXCTest, and the weak-reference side tables of Foundation.Process
	# on Linux (the tests spawn nats-server with it).
	printf 'leak:libXCTest.so\nleak:10Foundation7Process\n' > .build-asan.supp
	LSAN_OPTIONS=suppressions=$(CURDIR)/.build-asan.supp $(SWIFT) test --scratch-path .build-asan \
	  --sanitize=address --disable-xctest --filter "LHTTPUpstreamTests|LHTTPNATSTests|LHTTPServerTests|LHTTPGatewayTests|UpstreamTests|PubSubEndToEndTests|ErrorHandlingTests|SlowConsumerTests|ConformanceTests|WebhookRouteTests|WebhookHookTests|ClusterTests"

## bench: lhttpd vs nginx+Nchan vs nats-server, every scenario, one table and a chart (see bench/README.md)
bench: release
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(APT_PACKAGES) nginx libnginx-mod-nchan python3 util-linux gnuplot-nox curl"
	$(SWIFT) build -c release $(RELEASE_FLAGS) --product lhttp-bench
	bash bench/run.sh

bench-quick: release
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(APT_PACKAGES) nginx libnginx-mod-nchan python3 util-linux gnuplot-nox curl"
	$(SWIFT) build -c release $(RELEASE_FLAGS) --product lhttp-bench
	QUICK=1 bash bench/run.sh

clean:
	rm -rf .build
