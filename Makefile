# Two commands: `make run` starts the platform locally, `make test` runs every test.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
NPM_STAMP := frontend/node_modules/.installed
STANDALONE := frontend/.next/standalone/server.js
FRONTEND_SOURCES := $(shell find frontend/app frontend/components frontend/lib frontend/store \
	frontend/public -type f 2>/dev/null) frontend/next.config.ts frontend/package.json
export NEXT_TELEMETRY_DISABLED := 1

.PHONY: run test lint typecheck pytest frontend-check frontend-unit frontend-e2e clean

run: $(STAMP) $(STANDALONE)
	scripts/run-local

test: lint typecheck pytest frontend-check frontend-unit frontend-e2e

lint: $(STAMP)
	cd backend && ../$(BIN)/ruff check src tests && ../$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	cd backend && ../$(BIN)/mypy

# Tests that open peer connections need a loopback-only network: run them in their own
# network namespace when we can (root), as CI does.
pytest: $(STAMP)
	scripts/in-loopback-netns $(abspath $(BIN))/pytest backend/tests $(PYTEST_ARGS)

frontend-check: $(STANDALONE)
	cd frontend && npx tsc --noEmit -p .

frontend-unit: $(NPM_STAMP)
	cd frontend && npx vitest run

frontend-e2e: $(STAMP) $(STANDALONE)
	scripts/in-loopback-netns sh -c 'cd frontend && exec npx playwright test $(PLAYWRIGHT_ARGS)'

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
