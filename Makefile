# Two commands: `make run` starts the platform locally, `make test` runs every test.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
NPM_STAMP := frontend/node_modules/.installed
BENCH_STAMP := bench/node_modules/.installed
DEVOPS_STAMP := $(VENV)/.devops-installed
STANDALONE := frontend/.next/standalone/server.js
FRONTEND_SOURCES := $(shell find frontend/app frontend/components frontend/lib frontend/store \
	frontend/public -type f 2>/dev/null) frontend/next.config.ts frontend/package.json
export NEXT_TELEMETRY_DISABLED := 1

.PHONY: run test lint typecheck pytest frontend-check frontend-unit frontend-e2e devops-test bench clean

run: $(STAMP) $(STANDALONE)
	scripts/run-local

test: lint typecheck pytest frontend-check frontend-unit frontend-e2e devops-test

lint: $(STAMP)
	cd backend && ../$(BIN)/ruff check src tests && ../$(BIN)/ruff format --check src tests
	$(BIN)/ruff check bench && $(BIN)/ruff format --check bench

typecheck: $(STAMP)
	cd backend && ../$(BIN)/mypy

# Tests that open peer connections need a loopback-only network: run them in their own
# network namespace when we can (root), as CI does.
pytest: $(STAMP) $(BENCH_STAMP)
	scripts/in-loopback-netns $(abspath $(BIN))/pytest backend/tests $(PYTEST_ARGS)

frontend-check: $(STANDALONE)
	cd frontend && npx tsc --noEmit -p .

frontend-unit: $(NPM_STAMP)
	cd frontend && npx vitest run

frontend-e2e: $(STAMP) $(STANDALONE)
	scripts/in-loopback-netns sh -c 'cd frontend && exec npx playwright test $(PLAYWRIGHT_ARGS)'

# devops/: manifests, deploy.sh, Dockerfiles and local observability, proven offline. The
# wheelhouse (the backend's wheels, for the image-artefact test) is gathered first, outside the
# loopback-only namespace; the tests themselves use no network.
devops-test: $(DEVOPS_STAMP) $(STANDALONE)
	devops/tests/prepare-wheelhouse.sh $(VENV)/wheelhouse
	$(BIN)/ruff check devops && $(BIN)/ruff format --check devops
	scripts/in-loopback-netns $(abspath $(BIN))/pytest -c backend/pyproject.toml devops/tests $(PYTEST_ARGS)

# Not a test: the benchmark against PeerJS and the stack's ceiling (bench/RESULTS.md).
bench: $(STAMP) $(BENCH_STAMP)
	bench/run $(BENCH_ARGS)

# The benchmark's reference, the PeerJS server (the load tester's tests drive it too).
$(BENCH_STAMP): bench/package.json bench/package-lock.json
	cd bench && npm ci --no-audit --no-fund
	touch $(BENCH_STAMP)

# checkov pins packaging<24, which pytest 9 cannot share a venv with: it gets a venv of its own.
$(DEVOPS_STAMP): $(STAMP) devops/requirements-test.txt devops/requirements-checkov.txt
	$(BIN)/pip install --quiet -r devops/requirements-test.txt
	$(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install --quiet -r devops/requirements-checkov.txt
	touch $(DEVOPS_STAMP)

$(STAMP): backend/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e 'backend[test]'
	touch $(STAMP)

$(NPM_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $(NPM_STAMP)

# The production build (Next.js standalone) is what `make run` serves and the e2e tests use.
$(STANDALONE): $(NPM_STAMP) $(FRONTEND_SOURCES)
	cd frontend && npm run build

clean:
	rm -rf $(VENV) frontend/node_modules frontend/.next
