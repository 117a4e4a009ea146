# R2M developer targets. CI runs .ci/run, which runs the same test command.
GO ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build test lint bench

build:
	$(GO) build -o bin/r2m ./cmd/r2m

# The README's test command.
test:
	$(GO) test -count=1 -timeout 25m -v ./...

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# Go benchmarks, then the side-by-side harnesses under bench/ (see docs/benchmarks.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	@for d in bench/*/; do \
		if ls $$d*.go >/dev/null 2>&1 && grep -q '^package main' $$d*.go; then \
			echo "== $$d"; $(GO) run ./$$d || exit 1; \
		fi; \
	done
