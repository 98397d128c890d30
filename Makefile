# Postroom: `make run` starts the platform on the embedded default, `make test` runs
# everything CI runs. Both set up .venv themselves; a fresh machine needs only Python 3.11+.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench cluster clean

# PostgreSQL for `make bench` (each measurement creates and drops its own database there).
POSTROOM_BENCH_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
BENCH_ARGS ?=
CLUSTER_ARGS ?=
# pytest-xdist processes for `make test` (0: one process, in order).
TEST_WORKERS ?= 2

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock requirements-test.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Postroom needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x /usr/bin/chromium || { \
	  echo "installing Debian's chromium for the browser tests of the web console"; \
	  apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	$(BIN)/python -m pip install --quiet pip==26.3
	$(BIN)/python -m pip install --quiet -r requirements.lock -r requirements-test.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

run: setup
	$(BIN)/postroom serve

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -n $(TEST_WORKERS)

bench: setup
	$(BIN)/python -m pip install --quiet -r requirements-bench.lock
	@test -x /usr/sbin/smtp-sink || { \
	  echo "installing Debian's postfix for its smtp-sink"; \
	  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix; }
	POSTROOM_BENCH_DATABASE_URL=$(POSTROOM_BENCH_DATABASE_URL) $(BIN)/python -m bench.run $(BENCH_ARGS)

# 2 API processes behind bench/balancer.py, 3 workers and smtp-sink run a 200,000-recipient
# campaign: the end-to-end rate and each process's share (CLUSTER_ARGS="--workers 1,2,3").
cluster: setup
	@test -x /usr/sbin/smtp-sink || { \
	  echo "installing Debian's postfix for its smtp-sink"; \
	  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix; }
	$(BIN)/python -m bench.cluster --database-url $(POSTROOM_BENCH_DATABASE_URL) $(CLUSTER_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
