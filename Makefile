# orgservice — run `make help` for the list of targets.
GO       ?= go
BIN      ?= bin/orgservice
PKGS     ?= ./...
IMAGE    ?= orgservice:latest
# make bench: where the harness writes its JSON, and a MongoDB to run the
# scenarios against too (optional).
BENCH_JSON      ?= bench-results.json
BENCH_MONGO_URL ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: ## Run the service on the embedded database (data in ./data)
	$(GO) run ./cmd/orgservice

.PHONY: test
test: lint ## Lint, then run every test with the race detector
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

.PHONY: lint
lint: ## Vet, check formatting, refuse tracked files over 1 MiB, check the layering and that no type has over 25 methods
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	@big=$$(git ls-files -z 2>/dev/null | xargs -0 -r stat -c '%s %n' 2>/dev/null | awk '$$1 > 1048576 {print "  " $$2 " (" $$1 " bytes)"}'); \
		test -z "$$big" || { echo "tracked files over 1 MiB (a binary or generated output? remove it and ignore it):"; echo "$$big"; exit 1; }
	$(GO) test -count=1 -run '^(TestLayering|TestNoTypeOwnsTooMuch)$$' ./internal/app/

.PHONY: fmt
fmt: ## Format every Go file in place
	gofmt -w $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')

.PHONY: test-crash
test-crash: ## Black-box test: SIGKILL the binary during copy renames of 100,000 documents, deletes and member changes (~7 min)
	cd test/crash && $(GO) test -tags crash -count=1 -v -timeout 20m .

.PHONY: test-cluster
test-cluster: ## Black-box test: three service processes on one database under mixed concurrent traffic (~1 min)
	cd test/cluster && $(GO) test -tags cluster -count=1 -v -timeout 5m .

.PHONY: test-ui
test-ui: ## Drive Swagger UI in headless Chromium through the organization, member, audit, document and operator operations (needs node and chromium)
	bash test/ui/run.sh

.PHONY: bench
bench: ## Microbenchmarks, then the full load harness, ~35 min (docs/benchmarks.md)
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
	$(GO) run ./cmd/orgbench -json $(BENCH_JSON)
	@if [ -n "$(BENCH_MONGO_URL)" ]; then \
		echo "== the same scenarios on $(BENCH_MONGO_URL)"; \
		$(GO) run ./cmd/orgbench -mongo "$(BENCH_MONGO_URL)" -json $(basename $(BENCH_JSON))-mongo.json; \
	fi

.PHONY: bench-quick
bench-quick: ## Short microbenchmarks, then the harness's quick run (< 2 min of load)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 100ms $(PKGS)
	$(GO) run ./cmd/orgbench -quick -json $(BENCH_JSON)

.PHONY: build
build: ## Build a static binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/orgservice

.PHONY: docker-build
docker-build: ## Build the Docker image
	docker build -t $(IMAGE) .

.PHONY: docker-run
docker-run: ## Run the image alone on its embedded database (data in volume orgservice-data)
	docker run --rm -p 8080:8080 -v orgservice-data:/data $(IMAGE)

.PHONY: compose-up
compose-up: ## Start MongoDB and the service with Docker Compose v2
	docker compose up --build

.PHONY: compose-down
compose-down: ## Stop the Compose stack (data volume kept)
	docker compose down
