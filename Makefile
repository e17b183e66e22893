# commitcore — see README.md. Every target works on a fresh machine with only Go.
GO ?= go
FUZZTIME ?= 10s
SHMDIR ?= /dev/shm

.PHONY: build test bench fuzz lint clean-shm

build:
	$(GO) build ./...

test:
	$(GO) test -race ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Runs every fuzz target for FUZZTIME each (go test accepts one -fuzz target per run).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Removes shared-memory segments left in SHMDIR by runs whose processes died.
clean-shm:
	$(GO) run ./cmd/exchange-sim -clean -dir $(SHMDIR)
