# commitcore — see README.md. Every target works on a fresh machine with only Go.
GO ?= go
FUZZTIME ?= 10s
SHMDIR ?= /dev/shm

.PHONY: build test bench bench-short bench-go fuzz lint clean-shm soak

build:
	$(GO) build ./...

test:
	$(GO) test -race ./...

# The latency report (bench/): open-loop sweeps, side-by-side rows, .hgrm
# files and SVG plots into BENCHOUT, markdown on stdout. bench-short is the
# under-a-minute variant; bench-go runs every package's Go benchmarks.
BENCHOUT ?= bench/out
bench:
	$(GO) run ./bench/cmd/report -out $(BENCHOUT)

bench-short:
	$(GO) run ./bench/cmd/report -short -out $(BENCHOUT)

bench-go:
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

# The torture run: SOAKRUNS simulator runs, each with its own random fault
# schedule (SIGKILL and SIGSTOP of any component, price shocks), every one
# ending with a clean audit. A failing run prints the command that replays it.
SOAKRUNS ?= 200
soak:
	$(GO) test -count=1 -timeout 30m -run '^TestSoak$$' -v ./cmd/exchange-sim -args -xsim.soak=$(SOAKRUNS)

# Removes shared-memory segments left in SHMDIR by runs whose processes died.
clean-shm:
	$(GO) run ./cmd/exchange-sim -clean -dir $(SHMDIR)
