# Two commands: `make run` starts the platform locally, `make test` runs every test.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: run test lint typecheck pytest clean

run: $(STAMP)
	$(BIN)/videoconf serve

test: lint typecheck pytest

lint: $(STAMP)
	cd backend && ../$(BIN)/ruff check src tests && ../$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	cd backend && ../$(BIN)/mypy

# Tests that open peer connections need a loopback-only network: run the suite in its own
# network namespace when we can (root), as CI does.
pytest: $(STAMP)
	scripts/in-loopback-netns $(abspath $(BIN))/pytest backend/tests $(PYTEST_ARGS)

$(STAMP): backend/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e 'backend[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV)
