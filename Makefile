# sessionwatch: `make demo` runs the streamer on a local sample (`make demo-backfill`
# the backfill), `make test` runs every test against local emulators. Both start what they need and stop
# it afterwards.

GO            ?= go
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
PKGS          := ./...
TEST_FLAGS    ?= -race -count=1 -timeout 20m
BENCH         ?= .
BENCH_FLAGS   ?= -run '^$$' -benchmem -count 6

.PHONY: all build lambda test bench bench-backfill lint fmt demo demo-backfill load emulators-start emulators-stop clean fuzz

all: lint test

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/...

## lambda: the streamer as a Lambda deployment package for provided.al2023
## on x86_64 (terraform's lambda_package): bin/streamer-lambda.zip
lambda:
	mkdir -p bin/lambda
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -tags lambda.norpc -trimpath -ldflags "-s -w" -o bin/lambda/bootstrap ./cmd/streamer
	rm -f bin/streamer-lambda.zip && cd bin/lambda && zip -q ../streamer-lambda.zip bootstrap

## test: every test, with dynalite and local-aws-sqs started for the run
test:
	@scripts/with-emulators.sh $(GO) test $(TEST_FLAGS) $(PKGS)

## bench: benchmarks (6 runs each, for benchstat); BENCH=regexp selects
bench:
	@scripts/with-emulators.sh $(GO) test $(BENCH_FLAGS) -bench '$(BENCH)' $(PKGS)

## bench-backfill: the built backfill binary over a generated 100,000-record
## archive (--source file:), CPU per event against a seed-style decode of the
## same records in the same run; BENCH_COUNT runs (default 5), for benchstat
BENCH_COUNT ?= 5
bench-backfill:
	@scripts/with-emulators.sh $(GO) test ./cmd/backfill -run '^$$' -bench '^BenchmarkFileBackfillProcess$$' -benchtime 1x -count $(BENCH_COUNT) -timeout 60m

## fuzz: each fuzz target for FUZZTIME (default 2m)
FUZZTIME ?= 2m
fuzz:
	$(GO) test ./pkg/cloudtrail/ -run '^$$' -fuzz '^FuzzDecodeMessage$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
	$(GO) test ./pkg/cloudtrail/ -run '^$$' -fuzz '^FuzzRecords$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
	$(GO) test ./pkg/classify/ -run '^$$' -fuzz '^FuzzSentinelParser$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
	$(GO) test ./pkg/report/ -run '^$$' -fuzz '^FuzzGlob$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
	$(GO) test ./pkg/report/ -run '^$$' -fuzz '^FuzzReadFindings$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
	$(GO) test ./pkg/sessions/ -run '^$$' -fuzz '^FuzzUnmarshalItem$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
	$(GO) test ./pkg/sessions/ -run '^$$' -fuzz '^FuzzDecodeStreamRecord$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
	$(GO) test ./pkg/source/ -run '^$$' -fuzz '^FuzzOpenCheckpoint$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
	$(GO) test ./pkg/verdictlog/ -run '^$$' -fuzz '^FuzzDecodeLine$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod or go.sum is not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)
	@# terraform fmt where the binary exists; internal/tfcontract checks the same with hclwrite in make test
	@if command -v terraform >/dev/null 2>&1; then terraform fmt -check -diff -recursive terraform 2>/dev/null && echo "terraform fmt -check: ok"; fi

fmt:
	gofmt -w $$(git ls-files '*.go')

## demo: the streamer end to end: emulators up, queue with DLQ and session
## table created, a sample mix sent, findings and a summary shown
demo:
	@scripts/demo.sh

## demo-backfill: the backfill over a generated sample trail archive
demo-backfill:
	@scripts/demo-backfill.sh

## load: 50,000 events through local SQS into the streamer (defaults);
## messages/s, streamer CPU per message and peak RSS into docs/BENCHMARKS.md
load:
	@scripts/load.sh

emulators-start:
	@scripts/emulators.sh start

emulators-stop:
	@scripts/emulators.sh stop

clean:
	rm -rf bin out .emulators
