# psbridge: `make run` (the demo, on a fresh machine with only Python 3.11+) and `make test`.
# `make run ARGS=--reset` starts the demo afresh (see `.venv/bin/psbridge dev --help`).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint bench clean schema

# Install once; later runs (even with no network at all) reuse the virtualenv.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet -e '.[dev]' || { \
	  $(BIN)/python -c "import app.main" 2>/dev/null && \
	  echo "pip could not reach an index: using the environment already installed in $(VENV)"; }
	@touch $(STAMP)

ARGS ?=

run: $(STAMP)
	$(BIN)/psbridge dev $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# `make bench`: the posting bench, then the ingestion bench; one alone with its options:
# `make bench ARGS="ingestion --entries 4000 --repeat 1"` (see `.venv/bin/python -m bench ingestion --help`).
bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf .psbridge

schema: $(STAMP)
	$(BIN)/python -c "from experience_apis.schema import build_schema; \
	open('graphql/schema.graphql', 'w').write(str(build_schema()).rstrip() + '\n')"
